"""Audio files with ffmpeg: duration, and uploads that fit the provider's limits.

Always through ``asyncio.create_subprocess_exec`` (never blocking the event loop), always on files
in a temporary directory the caller deletes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path


class AudioError(Exception):
    """ffmpeg could not read or convert the audio (corrupt or unsupported file)."""

    transient = False


async def _run(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise AudioError(f"{command[0]} failed: {tail[0][:200]}")
    return stdout.decode(errors="replace")


async def duration_seconds(path: Path) -> float:
    """The audio's duration, read from the container by ffprobe."""
    output = await _run(
        "ffprobe", "-v", "error", "-show_entries", "format=duration",
        "-of", "default=noprint_wrappers=1:nokey=1", str(path),
    )  # fmt: skip
    try:
        return float(output.strip())
    except ValueError as exc:
        raise AudioError("ffprobe found no duration: not an audio file?") from exc


async def uploads_for(
    path: Path, workdir: Path, *, duration: float, max_bytes: int, chunk_seconds: int
) -> list[Path]:
    """Files to send to the transcription API, in order.

    A voice note within both limits is sent as it is (renamed ``.ogg``: OpenAI checks the file
    name and refuses Evolution's ``.oga``). Anything larger or longer is transcoded to compact
    mono Opus (16 kHz, 24 kbit/s, what WhatsApp itself uses) and split into ``chunk_seconds``
    parts, whose transcripts the caller joins.
    """
    size = (await asyncio.to_thread(path.stat)).st_size
    if size <= max_bytes and duration <= chunk_seconds:
        upload = workdir / "audio.ogg"
        if path != upload:
            await asyncio.to_thread(path.rename, upload)
        return [upload]
    pattern = workdir / "part-%03d.ogg"
    await _run(
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path),
        "-vn", "-ac", "1", "-ar", "16000", "-c:a", "libopus", "-b:a", "24k",
        "-f", "segment", "-segment_time", str(chunk_seconds), "-reset_timestamps", "1",
        str(pattern),
    )  # fmt: skip
    parts, sizes = await asyncio.to_thread(_parts_with_sizes, workdir)
    if not parts:
        raise AudioError("ffmpeg produced no audio")
    too_big = [
        part.name for part, part_size in zip(parts, sizes, strict=True) if part_size > max_bytes
    ]
    if too_big:
        raise AudioError(f"audio parts still over {max_bytes} bytes after transcoding: {too_big}")
    return parts


def _parts_with_sizes(workdir: Path) -> tuple[list[Path], list[int]]:
    parts = sorted(workdir.glob("part-*.ogg"))
    return parts, [part.stat().st_size for part in parts]
