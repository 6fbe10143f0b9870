"""Benchmark of the summary scheduler tick at scale.

Fills a throwaway embedded PostgreSQL with 100,000 tenants and 300,000 groups (hours spread over
the day, a mix of time zones, ~80 % of groups with summaries on), then times the tick (claim the
due summaries and queue their jobs, in one transaction) at several instants, against a baseline
measured in the same run: one plain scan of ``grupos`` (the least any "look at every group" tick
could cost). Target: < 1 s per tick. Then it times the tick's other query, the sweep for
claimed-but-never-queued summaries, in its worst case: every claimed summary still waiting in
the queue (none orphaned, all examined).

Last, the 09:00 burst: ``--burst`` more groups (10,000 by default) all due at one minute. The
tick claims and queues them (target: <= 2 s, the whole tick), against the same number claimed by
the same statement and then queued one job at a time through the job queue's pool (what the tick
did before), at another minute of the same run. The burst tick is reported whole (every part
committed, then the ``ANALYZE`` of the job table that follows a bulk defer), and until the first
jobs were committed (the workers are woken: a connection listening as they do hears the first).

    uv run python bench/scheduler.py [--tenants 100000] [--groups-per-tenant 3] [--ticks 10]
                                     [--burst 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import procrastinate
import psycopg
from sqlalchemy import text

import intellizap.summaries.tasks  # noqa: F401 - registers the summarize task on the queue app
from intellizap import jobs
from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.db.engine import Database, libpq_url
from intellizap.settings import Settings
from intellizap.summaries.scheduled import (
    SUMMARIZE_TASK,
    claim_due_summaries,
    requeue_orphaned_summaries,
)

FILL = """
INSERT INTO usuarios (instancia, "horaResumo", fuso_horario, max_grupos)
SELECT 'bench-' || n,
       lpad((n % 24)::text, 2, '0') || ':' || lpad(((n / 24) % 60)::text, 2, '0'),
       (ARRAY['America/Sao_Paulo', 'America/Manaus', 'America/Recife', 'Europe/Lisbon',
              'Asia/Tokyo', NULL])[1 + (n / 1440) % 6],
       CASE WHEN n % 10 = 0 THEN 2 END
FROM generate_series(1, :tenants) AS n;
"""
FILL_GROUPS = """
INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa)
SELECT '1203634' || lpad(g::text, 11, '0') || '@g.us', u.id, (g % 10) <> 0, (g % 5) <> 0, false
FROM usuarios u CROSS JOIN LATERAL generate_series(1, :per_tenant) AS s (k)
CROSS JOIN LATERAL (SELECT (hashtext(u.id::text) & 2147483647)::bigint * 10 + s.k AS g) AS x;
"""
# Tenants with every group due at one minute (09:30 and 09:45 in São Paulo), one group each.
FILL_BURST = """
WITH t AS (
    INSERT INTO usuarios (instancia, "horaResumo", fuso_horario)
    SELECT 'burst-' || :at || '-' || n, :at, 'America/Sao_Paulo' FROM generate_series(1, :n) AS n
    RETURNING id
)
INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa)
SELECT 'burst-' || t.id || '@g.us', t.id, true, true, false FROM t;
"""
# What the tick's own defers leave behind: one waiting job per claimed summary (the tick queued
# its own; the backlog claimed without a queue gets one here); claims backdated past the sweep's
# settling time so that every one of them is examined.
WAITING_JOBS = """
INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, lock, args, status)
SELECT 'summaries', 'summarize', 'summary:' || r.id, 'summary-group:' || r.grupo_id,
       jsonb_build_object('summary_id', r.id::text), 'todo'
FROM resumos r
WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.queueing_lock = 'summary:' || r.id);
UPDATE resumos SET created_at = now() - interval '5 minutes';
"""
BASELINE = (
    "SELECT count(*) FROM grupos g JOIN usuarios u ON u.id = g.usuario_id WHERE g.resumo_ativo"
)


async def timed(coro_factory: object, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await coro_factory()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--groups-per-tenant", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--burst", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="intellizap-bench-") as workdir:
        server = EmbeddedPostgres(Path(workdir))
        url = server.start()
        migrate.upgrade(url)
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        # The worker's pool (the tick runs in a worker): a burst's parts use a connection each.
        database = Database(url, pool_size=settings.database_pool_size)
        started = time.perf_counter()
        async with database.session() as session:
            await session.execute(text(FILL), {"tenants": args.tenants})
            await session.execute(text(FILL_GROUPS), {"per_tenant": args.groups_per_tenant})
            for at in ("09:30", "09:45"):
                await session.execute(text(FILL_BURST), {"at": at, "n": args.burst})
        async with database.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            groups = (await conn.execute(text("SELECT count(*) FROM grupos"))).scalar_one()
        print(
            f"filled {args.tenants:,} tenants / {groups:,} groups in {time.perf_counter() - started:.1f}s"
        )

        baseline = await timed(lambda: _scan(database), args.ticks)
        instant = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        claimed: list[int] = []
        async with jobs.connect(url).open_async() as queue:

            async def tick(*, full_catch_up: bool = False) -> None:
                nonlocal instant
                claims = await claim_due_summaries(
                    database, settings, instant, full_catch_up=full_catch_up, queue=queue
                )
                claimed.append(len(claims))
                instant += timedelta(minutes=1)

            # Warm-up: claims the 3-hour backlog of the first instant (queued apart, below).
            claimed.append(len(await claim_due_summaries(database, settings, instant)))
            instant += timedelta(minutes=1)
            backlog = claimed.pop()
            ticks = await timed(tick, args.ticks)
            catch_up = await timed(lambda: tick(full_catch_up=True), 3)

            burst_committed, burst_tick, burst_claims = await _burst_tick(
                database, settings, queue, url
            )
            before, before_claims = await _burst_one_defer_at_a_time(database, settings, queue)
            async with database.session() as session:
                for statement in WAITING_JOBS.strip().split(";\n"):
                    await session.execute(text(statement))
                pending = (await session.execute(text("SELECT count(*) FROM resumos"))).scalar_one()
            requeued: list[int] = []

            async def sweep() -> None:
                requeued.append(await requeue_orphaned_summaries(database, queue, settings))

            sweeps = await timed(sweep, args.ticks)
        await database.dispose()
        server.stop()

    base, tick_median = statistics.median(baseline), statistics.median(ticks)
    print(f"baseline scan of grupos : median {base * 1000:7.1f} ms")
    print(
        f"scheduler tick          : median {tick_median * 1000:7.1f} ms, max {max(ticks) * 1000:.1f} ms"
    )
    catch_up_median = statistics.median(catch_up) * 1000
    print(
        f"catch-up tick (1/15 min): median {catch_up_median:7.1f} ms, max {max(catch_up) * 1000:.1f} ms"
    )
    print(f"ratio tick / scan       : {tick_median / base:.2f}x")
    print(f"first tick (catch-up)   : {backlog:,} summaries claimed")
    steady = claimed[: args.ticks]
    print(
        f"summaries claimed/tick  : {statistics.mean(steady):.0f} (expected ~{groups * 0.72 / 1440:.0f})"
    )
    print(
        f"orphan sweep            : median {statistics.median(sweeps) * 1000:7.1f} ms over "
        f"{pending:,} waiting summaries ({sum(requeued)} re-queued, expected 0)"
    )
    worst = max(ticks + catch_up) + max(sweeps)
    print(
        f"target < 1 s per tick   : {'OK' if worst < 1.0 else 'MISSED'} (worst tick + sweep {worst * 1000:.0f} ms)"
    )
    print(
        f"burst tick              : {burst_claims:,} claimed and queued in {burst_tick:.2f} s"
        f" ({burst_claims / burst_tick:,.0f}/s) — target <= 2 s: "
        f"{'OK' if burst_tick <= 2.0 else 'MISSED'}"
    )
    print(
        f"  first jobs committed  : {burst_committed:.2f} s (the workers are woken; the tick's"
        f" other parts commit at about the same time, then the job table's ANALYZE)"
    )
    print(
        f"  baseline (before)     : {before_claims:,} claimed, then queued one job at a time"
        f" through the queue's pool, in {before:.2f} s ({before / burst_tick:.1f}x the tick)"
    )


BURST_AT = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)  # 09:30 in São Paulo
BEFORE_AT = datetime(2026, 11, 25, 12, 45, tzinfo=UTC)  # 09:45


async def _burst_tick(
    database: Database, settings: Settings, queue: procrastinate.App, url: str
) -> tuple[float, float, int]:
    """The tick at the burst minute: claims and their jobs, a transaction per part. Returns
    when the first jobs were committed (the first notification of a new job, which wakes the
    workers), when the tick ended, and how many it claimed."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as listener:
        await listener.execute("LISTEN procrastinate_any_queue_v1")  # what workers listen to
        start = time.perf_counter()

        async def first_job_heard() -> float:
            async for _ in listener.notifies(stop_after=1):
                pass
            return time.perf_counter() - start

        heard = asyncio.create_task(first_job_heard())
        claims = await claim_due_summaries(
            database, settings, BURST_AT, full_catch_up=False, queue=queue
        )
        whole = time.perf_counter() - start
        committed = await asyncio.wait_for(heard, timeout=10)
    return committed, whole, len(claims)


async def _burst_one_defer_at_a_time(
    database: Database, settings: Settings, queue: procrastinate.App
) -> tuple[float, int]:
    """Baseline: what the tick did before, claim committed, then one defer per claim through
    the queue's own pool (4 connections)."""
    start = time.perf_counter()
    claims = await claim_due_summaries(database, settings, BEFORE_AT, full_catch_up=False)
    for claim in claims:
        await jobs.defer(
            queue,
            SUMMARIZE_TASK,
            queueing_lock=f"summary:{claim.summary_id}",
            lock=f"summary-group:{claim.group_id}",
            args={"summary_id": str(claim.summary_id)},
        )
    return time.perf_counter() - start, len(claims)


async def _scan(database: Database) -> None:
    async with database.engine.connect() as conn:
        await conn.execute(text(BASELINE))


if __name__ == "__main__":
    asyncio.run(main())
