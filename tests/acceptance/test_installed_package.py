"""The commands the image runs, run the way the image runs them: the wheel built from this
checkout, installed into a fresh virtual environment (no source tree, no dev dependencies), then
compose.yaml's `migrate`, `api` and `worker` commands (the Dockerfile's CMD runs `api`), with
the image's production settings, against a database of their own. Each stops on SIGTERM with
status 0. The Dockerfile's HEALTHCHECK command passes against the running API."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import yaml

from tests.conftest import WEBHOOK_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON (exec) form of the last ``name`` instruction of the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    matches = re.findall(rf"^{name}\s+(?:--\S+\s+)*(?:CMD\s+)?(\[.*\])\s*$", text, re.MULTILINE)
    assert matches, f"no {name} in exec form in the Dockerfile"
    command: list[str] = json.loads(matches[-1])
    return command


def compose_command(service: str) -> list[str]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    command: list[str] = compose["services"][service]["command"]
    return command


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the wheel (.ci/run installs it)"
    work = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(work / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = (work / "dist").glob("intellizap-*.whl")
    subprocess.run(
        [uv, "venv", "--python", sys.executable, str(work / "venv")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # The locked versions, as the image's `uv sync --frozen --no-dev` installs them.
    locked = work / "requirements.txt"
    subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--project",
            str(ROOT),
            "--output-file",
            str(locked),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--python",
            str(work / "venv" / "bin" / "python"),
            "-r",
            str(locked),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return work / "venv" / "bin"


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    name = f"installed_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    parts = urlsplit(database_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def image_environment(database_url: str, **extra: str) -> dict[str, str]:
    """The image's ENV (production), what an operator sets, and nothing of this checkout."""
    keep = {"PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        ENV="production",
        PYTHONUNBUFFERED="1",
        HOST="127.0.0.1",
        DATABASE_URL=database_url,
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        JOB_POLL_SECONDS="0.5",
        WORKER_HEARTBEAT_SECONDS="1",
        **extra,
    )
    return env


def start(
    venv_bin: Path, args: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """``args`` as the image runs them: the first word is on the image's PATH (the venv's bin)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(venv_bin / args[0]), *args[1:]],
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for(check: object, process: subprocess.Popen[bytes], log: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready in {within}s: {log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes], log: Path) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=45)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output = log.read_text()
        assert "Traceback" not in output, output[-3000:]
        assert "XDG_RUNTIME_DIR" not in output


def test_the_image_commands_run_from_an_installed_wheel(
    venv_bin: Path, fresh_database: str, tmp_path: Path
) -> None:
    env = image_environment(fresh_database)
    assert dockerfile_instruction("CMD") == compose_command("api")
    command = compose_command("migrate")
    migrate = subprocess.run(
        [str(venv_bin / command[0]), *command[1:]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "database at revision" in migrate.stdout

    port = free_port()
    api_log = tmp_path / "api.log"
    api = start(venv_bin, [*compose_command("api"), "--port", str(port)], env, api_log)
    try:

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
                return bool(r.status == 200)

        wait_for(ready, api, api_log, within=60)
        healthcheck = dockerfile_instruction("HEALTHCHECK")
        probe = subprocess.run(
            [str(venv_bin / healthcheck[0]), *healthcheck[1:]],
            env={**env, "PORT": str(port)},
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
    finally:
        assert stop(api, api_log) == 0

    metrics_port = free_port()
    worker_log = tmp_path / "worker.log"
    worker = start(
        venv_bin,
        compose_command("worker"),
        image_environment(fresh_database, METRICS_PORT=str(metrics_port), LOG_LEVEL="INFO"),
        worker_log,
    )
    try:

        def working() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
                body = r.read().decode()
            return "intellizap_queue_workers 1.0" in body

        wait_for(working, worker, worker_log, within=60)
    finally:
        assert stop(worker, worker_log) == 0
    assert "Stopped worker" in worker_log.read_text()
