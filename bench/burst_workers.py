"""The worker processes of ``bench/burst.py``: their environment (the throwaway database, the fake
LLM and Evolution, ``--concurrency``, ``--send-interval`` and any ``--env NAME=VALUE``), starting
``--workers`` real ``intellizap worker`` processes (the first under cProfile with ``--profile``,
their output to ``--worker-log``, hidden with ``--quiet``), and stopping them: SIGTERM, then
SIGKILL for any still running 40 s later."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fakes.evolution import FakeEvolution
    from tests.fakes.openai import FakeOpenAI

from intellizap.settings import Settings

PLATFORM_KEY = "sk-bench-platform-key-0123456789"
EVOLUTION_KEY = "bench-evolution-global-key-0123"


def slots_per_worker(args: argparse.Namespace) -> int:
    """``--concurrency``, or the product's default ``WORKER_CONCURRENCY``."""
    return args.concurrency or int(Settings.model_fields["worker_concurrency"].default)


def worker_env(
    args: argparse.Namespace, url: str, ai: FakeOpenAI, evo: FakeEvolution
) -> dict[str, str]:
    env = {
        **os.environ,
        "ENV": "development",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": url,
        "OPENAI_API_KEY": PLATFORM_KEY,
        "OPENAI_BASE_URL": ai.url,
        "EVOLUTION_API_URL": evo.url,
        "EVOLUTION_API_KEY": EVOLUTION_KEY,
        "JOB_POLL_SECONDS": "1",
    }
    if args.concurrency is not None:
        env["WORKER_CONCURRENCY"] = str(args.concurrency)
    if args.send_interval is not None:
        env["SEND_MIN_INTERVAL_SECONDS"] = str(args.send_interval)
    for setting in args.env:
        name, _, value = setting.partition("=")
        env[name.upper()] = value
    return env


def start_workers(args: argparse.Namespace, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """``--workers`` worker processes, started once, before the measurement."""
    profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
    log = args.worker_log.open("ab") if args.worker_log else None
    return [
        subprocess.Popen(
            [sys.executable, *(profile if n == 0 else []), "-m", "intellizap", "worker"],
            env=env,
            stdout=log or subprocess.DEVNULL,
            stderr=log or (subprocess.DEVNULL if args.quiet else None),
        )
        for n in range(args.workers)
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=40)
        except subprocess.TimeoutExpired:
            worker.kill()
