"""The 09:00 burst: N groups due at the same minute, through the real worker, against fakes.

Fills a throwaway embedded PostgreSQL with ``--groups`` groups spread over ``--tenants`` tenants,
all due at the next whole minute (with ``--messages`` messages each), starts ``--workers``
real ``intellizap worker`` processes, and follows the drain: the scheduler tick claims and queues
every summary, the worker writes each one with the fake LLM (answering in ``--llm-latency``
seconds; ``--throttle`` limits it to that many requests per second per key, the way OpenAI does:
429 + x-ratelimit-* headers + Retry-After) and sends it through the fake Evolution (answering in
``--send-latency`` seconds).

Reported: time from the due minute to the first, median and last send; CPU-ms per summary of the
worker(s) and of PostgreSQL; worker CPU busy % and slot occupancy through the drain; LLM calls
made and refused; whether every group got its summary exactly once. Baseline of the same run
(unthrottled runs): the same N LLM calls and sends made directly (openai SDK + httpx, no queue, no
database) at the same concurrency, in a process of its own: the floor for the drain time and the
CPU a summary cannot avoid.

    uv run python bench/burst.py [--groups 2000] [--tenants 1000] [--concurrency C]
        [--throttle 5] [--send-interval S] [--llm-latency 2.5] [--send-latency 0.15]

This file runs the burst and the baseline; its parts live next to it: the fill and the progress
query in ``burst_database.py``, the worker processes in ``burst_workers.py``, CPU accounting from
``/proc`` in ``burst_cpu.py``, the sampling of the drain in ``burst_drain.py`` and the report in
``burst_report.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import text
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

from burst_database import ZONE, fill
from burst_drain import Run, follow, idle_rates
from burst_report import report
from burst_workers import (
    EVOLUTION_KEY,
    PLATFORM_KEY,
    slots_per_worker,
    start_workers,
    stop_workers,
    worker_env,
)
from embedded_db import embedded_server
from intellizap.db import migrate
from intellizap.db.engine import Database

SUMMARY = (
    "📌 *Principais assuntos*\n• O pedido 3 foi entregue.\n✅ *Decisões*\n• Reunião na quinta."
)


# -- the run ----------------------------------------------------------------------------------------


async def burst(args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="intellizap-burst-") as workdir,
        FakeOpenAI.running() as ai,
        FakeEvolution.running() as evo,
        embedded_server(Path(workdir)) as (server, url),
    ):
        ai.completion = SUMMARY
        ai.latency = args.llm_latency
        if args.throttle:
            ai.throttle(requests_per_second=args.throttle)
        evo.delay("/message/sendText/", args.send_latency)
        migrate.upgrade(url)
        postmaster = int((server.pgdata / "postmaster.pid").read_text().split()[0])
        database = Database(url, pool_size=2)
        if args.pg_slow_ms is not None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    f"ALTER SYSTEM SET log_min_duration_statement = {int(args.pg_slow_ms)}"
                )
                conn.execute("SELECT pg_reload_conf()")
        # Due at the first whole minute at least --lead seconds away (time to fill and start).
        wall_due = (datetime.now(UTC) + timedelta(seconds=args.lead)).replace(
            second=0, microsecond=0
        ) + timedelta(minutes=1)
        await fill(database, args, wall_due.astimezone(ZoneInfo(ZONE)))
        env = worker_env(args, url, ai, evo)
        workers = start_workers(args, env)
        try:
            run = Run(due=time.monotonic() + (wall_due - datetime.now(UTC)).total_seconds())
            wait = run.due - time.monotonic()
            print(f"{args.groups:,} groups of {args.tenants:,} tenants due in {wait:.0f} s")
            if wait < 5:
                raise RuntimeError("filling took too long: raise --lead")
            # Let the workers settle (start-up, first ticks), then measure their idle CPU.
            await asyncio.sleep(max(0.0, run.due - time.monotonic() - 16))
            run.idle_worker_cpu, run.idle_postgres_cpu = await idle_rates(
                database, workers, postmaster, max(1.0, run.due - time.monotonic() - 2)
            )
            await asyncio.sleep(max(0.0, run.due - time.monotonic() - 1))

            def summary_sends() -> int:
                return sum(1 for s in evo.sent if s.text.startswith("📝"))

            timeout = args.groups / (args.throttle or 10) * 3 + 300
            await follow(database, workers, postmaster, run, args.groups, timeout, summary_sends)
        finally:
            stop_workers(workers)
        for sent in evo.sent:
            if sent.text.startswith("📝"):
                run.sends.append(sent.at - run.due)
                run.per_group[sent.number] += 1
        async with database.engine.connect() as conn:
            for status, reason, n in (
                await conn.execute(
                    text("SELECT status::text, erro, count(*) FROM resumos GROUP BY 1, 2")
                )
            ).all():
                run.statuses[status] += n
                if reason:
                    run.reasons[reason] += n
        run.llm_admitted, run.llm_refused = ai.throttled
        if args.pg_slow_ms is not None and args.worker_log:
            log_file = server.pgdata / "log"
            if log_file.exists():
                args.worker_log.with_suffix(".postgres.log").write_bytes(log_file.read_bytes())
        run.llm_calls = len(ai.requests_to("/chat/completions"))
        await database.dispose()
        baseline = None
        if not args.throttle and not args.no_baseline:
            baseline = direct_baseline(args, ai.url, evo.url)
        return report(args, run, baseline)


# -- the baseline: the same calls, directly ------------------------------------------------------------


async def direct_client(llm_url: str, evolution_url: str, n: int, concurrency: int) -> float:
    """Seconds of CPU the calls themselves took (imports excluded)."""
    import httpx
    import httpx2
    import openai

    started = time.process_time()
    # A connection kept for every slot (the SDK's default keeps 100: beyond, each call would
    # connect anew), idle ones dropped before the server's own 5-s idle timeout (a request on a
    # connection being closed fails with a read error), as the product's clients do.
    llm_pool = httpx2.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    llm = openai.AsyncOpenAI(
        api_key=PLATFORM_KEY,
        base_url=llm_url,
        max_retries=2,  # a connection the fake server dropped (nothing was asked): ask again
        http_client=openai.DefaultAsyncHttpxClient(limits=llm_pool),
    )
    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=evolution_url, limits=limits, timeout=60) as evolution:

        async def one(i: int) -> None:
            async with slots:
                result = await llm.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": f"grupo {i}"}],
                    max_tokens=1500,
                )
                response = await evolution.post(
                    f"/message/sendText/burst-{i}",
                    headers={"apikey": EVOLUTION_KEY},
                    json={"number": f"{i}@g.us", "text": result.choices[0].message.content},
                )
                response.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(n)))
    await llm.close()
    return time.process_time() - started


def direct_baseline(args: argparse.Namespace, llm_url: str, evolution_url: str) -> dict[str, float]:
    concurrency = slots_per_worker(args) * args.workers
    command = [
        sys.executable,
        __file__,
        "--direct",
        llm_url,
        evolution_url,
        str(args.groups),
        str(concurrency),
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    drain = time.monotonic() - started
    cpu = json.loads(done.stdout.strip().splitlines()[-1])["cpu_s"]
    return {"drain_s": drain, "cpu_ms_per_summary": 1000 * cpu / args.groups}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--direct":
        llm_url, evolution_url, n, concurrency = sys.argv[2:6]
        cpu = asyncio.run(direct_client(llm_url, evolution_url, int(n), int(concurrency)))
        print(json.dumps({"cpu_s": cpu}))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=None, help="WORKER_CONCURRENCY")
    parser.add_argument(
        "--send-interval",
        type=float,
        default=None,
        help="SEND_MIN_INTERVAL_SECONDS (default: the product's)",
    )
    parser.add_argument("--throttle", type=float, default=None, help="LLM requests/s per key")
    parser.add_argument("--llm-latency", type=float, default=2.5)
    parser.add_argument("--send-latency", type=float, default=0.15)
    parser.add_argument("--lead", type=float, default=40, help="seconds to fill and start")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="hide the workers' own logs")
    parser.add_argument("--save", type=Path, default=None, help="write the report as JSON here")
    parser.add_argument("--timeline", action="store_true", help="print the drain every 2 s")
    parser.add_argument("--worker-log", type=Path, default=None, help="the workers' output")
    parser.add_argument(
        "--pg-slow-ms", type=float, default=None, help="log statements slower than this"
    )
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the workers (repeatable)"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="run the (first) worker under cProfile"
    )
    args = parser.parse_args()
    result = asyncio.run(burst(args))
    if args.save:
        args.save.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
