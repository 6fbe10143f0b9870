"""The targets of ``bench/ingest.py``: the servers under load, each one uvicorn worker process on
a free loopback port on the run's database (the asyncpg and psycopg one-INSERT baselines, the
service, and with ``--compare REF`` the service as it was at git revision REF, extracted with
``git archive``), and the one request each is sent first, so a misconfiguration fails loudly
before any load is sent."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from ingest_report import STRONG
from loadgen import INSTANCE, INSTANCE_SECRET, PATH, SECRET, BodyTemplate
from processes import Server

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def checkout(ref: str, workdir: Path) -> Path:
    """The ``src/`` tree of git revision ``ref``, extracted under ``workdir``."""
    target = workdir / "before"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise RuntimeError(f"git archive {ref} failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


def build_targets(
    args: argparse.Namespace, url: str, group_id: uuid.UUID, workdir: Path
) -> list[Server]:
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "WEBHOOK_", "TENANT_", "PYTHONPATH"))
    }
    service_env = {
        **base_env,
        "DATABASE_URL": url,
        "WEBHOOK_SECRET": SECRET,
        "ENV": "development",
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": str(workdir / "data"),
        # All the load comes from one instance: lift the per-instance flood limit.
        "WEBHOOK_RATE_PER_INSTANCE": "1000000000",
        "WEBHOOK_BURST_PER_INSTANCE": "1000000000",
    }
    baseline_env = {**base_env, "BASELINE_DATABASE_URL": url, "BASELINE_GROUP_ID": str(group_id)}
    baseline = [sys.executable, str(BENCH_DIR / "baseline_app.py")]
    service = [sys.executable, "-m", "intellizap", "api"]
    # Not the repository as working directory: its .env must not leak into the run.
    targets = [
        Server(STRONG, [*baseline, "--driver", "asyncpg"], baseline_env, workdir),
        Server("psycopg", [*baseline, "--driver", "psycopg"], baseline_env, workdir),
        Server("service", service, service_env, workdir),
    ]
    if args.compare:
        # PYTHONPATH comes before the editable install on sys.path: the old tree is imported.
        old_src = checkout(args.compare, workdir)
        targets.append(
            Server("before", service, {**service_env, "PYTHONPATH": str(old_src)}, workdir)
        )
    return targets


def smoke_test(server: Server, template: BodyTemplate, jid: str) -> dict[str, Any]:
    """One request, so a misconfiguration fails loudly before any load is sent."""
    response = httpx.post(
        f"{server.base_url}{PATH}",
        content=template.body(jid, f"smoke-{server.name}-{uuid.uuid4().hex}"),
        headers={
            "Content-Type": "application/json",
            "X-Webhook-Instance": INSTANCE,
            "X-Webhook-Secret": INSTANCE_SECRET,
        },
        timeout=10,
        trust_env=False,  # loopback only, never through a proxy
    )
    if response.status_code != 200:
        raise RuntimeError(f"{server.name} answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    return answer
