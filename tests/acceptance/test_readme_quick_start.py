"""The README's quick start, command by command as it is written there: `intellizap serve` on a
fresh directory, then the onboarding block in a second terminal — a tenant, an enabled group, the
example webhooks stored, a summary prompt. If the README changes, this test follows it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_start_blocks() -> list[list[str]]:
    """The bash blocks of the Quick start section, as command lines (comments dropped)."""
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [
        [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]
        for block in blocks
    ]


def as_process(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[:3] == ["uv", "run", "intellizap"], command
    return [sys.executable, "-m", "intellizap", *words[3:]]


def test_the_readme_quick_start_reaches_a_stored_message_and_a_summary_prompt(
    tmp_path: Path,
) -> None:
    serve_block, onboarding, *_ = quick_start_blocks()
    assert serve_block == ["uv run intellizap serve"]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "WEBHOOK_SECRET", "EVOLUTION_API_KEY", "XDG_RUNTIME_DIR")
    }
    env["PORT"] = str(free_port())  # the README's 8000, moved out of the way of other tests
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        service = subprocess.Popen(
            as_process(serve_block[0]), cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert service.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{env['PORT']}/health/ready", timeout=2
                ) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        outputs = []
        for command in onboarding:
            result = subprocess.run(
                as_process(command),
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, (command, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr
            outputs.append(result.stdout)
    finally:
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0, log.read_text()[-3000:]
    demo, prompt = outputs[-2], outputs[-1]
    assert "7 of 7 messages stored in group 120363401234567890@g.us" in demo
    assert "Ana: Combinado: nota na quarta, coleta na sexta às 10h. Obrigada!" in prompt
    assert "--- 7 messages" in prompt
    assert "XDG_RUNTIME_DIR" not in log.read_text()
