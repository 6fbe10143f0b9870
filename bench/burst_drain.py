"""Following the drain of ``bench/burst.py``: what one run records (:class:`Run`, and a
:class:`Sample` every half second of the workers' and PostgreSQL's CPU and of the progress
query), the background CPU of both while nothing is due (:func:`idle_rates`, so it can be taken
off the drain's figures), and the sampling itself until every summary is finished and sent
(:func:`follow`)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text

from burst_cpu import peak_memory_mb, postgres_cpu, process_cpu, run_queue_wait
from burst_database import PROGRESS
from intellizap.db.engine import Database


@dataclass
class Sample:
    at: float
    worker_cpu: float
    postgres_cpu: float
    claimed: int
    finished: int
    doing: int
    waiting: int
    summarizing: int
    summaries_waiting: int
    retrying: int
    worker_wait: float = 0.0
    """Seconds the workers have waited for a core, ready to run (summed)."""


@dataclass
class Run:
    due: float  # monotonic time of the due minute
    samples: list[Sample] = field(default_factory=list)
    sends: list[float] = field(default_factory=list)
    per_group: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    llm_admitted: int = 0
    llm_refused: int = 0
    llm_calls: int = 0
    idle_worker_cpu: float = 0.0
    """CPU seconds per second the workers use with nothing to do (polling, heartbeats)."""
    idle_postgres_cpu: float = 0.0
    """The same for PostgreSQL, including this script's own sampling queries."""
    worker_peak_mb: float = 0.0
    """The largest peak resident memory of a worker process over the drain."""


async def idle_rates(
    database: Database, workers: list[subprocess.Popen[bytes]], postmaster: int, seconds: float
) -> tuple[float, float]:
    """Background CPU of the workers and of PostgreSQL while nothing is due, sampled the way
    :func:`follow` samples, so it can be taken off the drain's figures."""
    start = time.monotonic()
    worker_start = sum(process_cpu(w.pid) for w in workers)
    postgres_start = postgres_cpu(postmaster)
    while time.monotonic() - start < seconds:
        async with database.engine.connect() as conn:
            await conn.execute(text(PROGRESS))
        sum(process_cpu(w.pid) for w in workers)
        postgres_cpu(postmaster)
        await asyncio.sleep(0.5)
    wall = time.monotonic() - start
    worker_rate = (sum(process_cpu(w.pid) for w in workers) - worker_start) / wall
    return worker_rate, (postgres_cpu(postmaster) - postgres_start) / wall


async def follow(
    database: Database,
    workers: list[subprocess.Popen[bytes]],
    postmaster: int,
    run: Run,
    expected: int,
    within: float,
    sent: Callable[[], int],
) -> None:
    """Sample every half second until every summary is finished and sent (or ``within`` s)."""
    deadline = run.due + within
    while time.monotonic() < deadline:
        async with database.engine.connect() as conn:
            claimed, finished, doing, waiting, summarizing, summaries_waiting, retrying = (
                await conn.execute(text(PROGRESS))
            ).one()
        run.samples.append(
            Sample(
                time.monotonic(),
                sum(process_cpu(w.pid) for w in workers),
                postgres_cpu(postmaster),
                claimed,
                finished,
                doing,
                waiting,
                summarizing,
                summaries_waiting,
                retrying,
                sum(run_queue_wait(w.pid) for w in workers),
            )
        )
        run.worker_peak_mb = max(run.worker_peak_mb, *(peak_memory_mb(w.pid) for w in workers))
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a worker process exited during the run")
        if claimed >= expected and finished >= expected and sent() >= expected:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the drain did not finish within {within:.0f} s")
