"""Real Ogg/Opus voice notes (like WhatsApp's push-to-talk audio), generated with ffmpeg and cached."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

FFMPEG = "/usr/bin/ffmpeg" if Path("/usr/bin/ffmpeg").exists() else "ffmpeg"
FFPROBE = "/usr/bin/ffprobe" if Path("/usr/bin/ffprobe").exists() else "ffprobe"
CACHE = Path(tempfile.gettempdir()) / "intellizap-test-voice-notes"


def voice_note(
    seconds: float, *, path: Path | None = None, frequency: float = 440.0, bitrate_k: int = 24
) -> bytes:
    """A mono 16 kHz libopus Ogg voice note of ``seconds`` (a tone with a 3 Hz wobble).

    Files are cached per parameters; different ``frequency`` values give different bytes.
    With ``path`` the bytes are also written there.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"{seconds:.3f}s-{frequency:g}hz-{bitrate_k}k.ogg"
    if not cached.exists():
        fd, tmp = tempfile.mkstemp(suffix=".ogg", dir=CACHE)
        os.close(fd)
        source = f"sine=frequency={frequency:g}:sample_rate=16000:duration={seconds}"
        subprocess.run(
            [
                FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", source,
                "-af", "tremolo=f=3:d=0.6", "-ac", "1", "-ar", "16000",
                "-c:a", "libopus", "-b:a", f"{bitrate_k}k", "-application", "voip",
                "-f", "ogg", tmp,
            ],
            check=True,
            timeout=120,
        )  # fmt: skip
        os.replace(tmp, cached)  # atomic: safe with parallel test workers
    data = cached.read_bytes()
    if path is not None:
        path.write_bytes(data)
    return data


def probe(data: bytes) -> dict[str, Any]:
    """ffprobe's view of ``data``: ``{"format": {...}, "streams": [...]}``."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as file:
        file.write(data)
        file.flush()
        result = subprocess.run(
            [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
             file.name],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def duration_of(data: bytes) -> float:
    """Duration in seconds per ffprobe (raises ``CalledProcessError`` for non-media bytes)."""
    return float(probe(data)["format"]["duration"])
