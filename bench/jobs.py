"""Benchmark of the job queue: defer→start latency and throughput of real send jobs.

Runs the real worker (``intellizap.jobs.run_worker``) against a throwaway embedded PostgreSQL and
the test suite's fake Evolution server (real HTTP on loopback), with no send pacing:

1. latency: one ``send_text`` job at a time on an idle worker, time from ``defer`` to the fake
   receiving the send (LISTEN/NOTIFY wakes the worker; the polling backstop is not involved);
2. throughput: N jobs spread over many instances (one lock each), time to drain them all,
   against a baseline of the same number of sends made directly with the Evolution client.

    uv run python bench/jobs.py [--jobs 400] [--instances 40] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.evolution import FakeEvolution

from intellizap import jobs
from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.db.engine import Database
from intellizap.evolution.client import EvolutionClient
from intellizap.evolution.sending import queue_text
from intellizap.settings import Settings


async def wait_for_sends(evolution: FakeEvolution, count: int, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while len(evolution.sent) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(evolution.sent)} of {count} sends arrived")
        await asyncio.sleep(0.002)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-samples", type=int, default=30)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="intellizap-jobs-") as workdir,
        FakeEvolution.running() as evo,
    ):
        url = EmbeddedPostgres(Path(workdir)).start()
        migrate.upgrade(url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=url,
            evolution_api_url=evo.url,
            evolution_api_key="bench-evolution-key",
            send_min_interval_seconds=0,
            worker_concurrency=args.concurrency,
            job_poll_seconds=2.0,
        )
        database = Database(url, pool_size=4)
        tenants = []
        async with database.session() as session:
            for n in range(args.instances):
                tenant_id = uuid.uuid4()
                await session.execute(
                    text("INSERT INTO usuarios (id, instancia) VALUES (:id, :name)"),
                    {"id": tenant_id, "name": f"bench-{n}"},
                )
                tenants.append(tenant_id)
        queue = jobs.connect(url)
        async with queue.open_async():
            worker = asyncio.create_task(jobs.run_worker(queue, settings, url))
            await asyncio.sleep(2)  # worker registered and listening

            latencies = []
            for n in range(args.latency_samples):
                before = len(evo.sent)
                start = time.monotonic()
                await queue_text(
                    queue,
                    tenant_id=tenants[0],
                    number="120363400000000001@g.us",
                    text=f"ping {n}",
                    max_chars=3500,
                )
                await wait_for_sends(evo, before + 1)
                latencies.append(evo.sent[-1].at - start)
                await asyncio.sleep(0.05)

            before = len(evo.sent)
            start = time.monotonic()
            for n in range(args.jobs):
                await queue_text(
                    queue,
                    tenant_id=tenants[n % len(tenants)],
                    number="120363400000000001@g.us",
                    text=f"msg {n}",
                    max_chars=3500,
                )
            deferred = time.monotonic() - start
            await wait_for_sends(evo, before + args.jobs)
            drained = time.monotonic() - start
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

        client = EvolutionClient(evo.url, api_key="bench-evolution-key")
        start = time.monotonic()
        for n in range(args.jobs):
            await client.send_text(
                f"bench-{n % args.instances}", number="120363400000000001@g.us", text=f"direct {n}"
            )
        direct = time.monotonic() - start
        await client.aclose()
        await database.dispose()

    latencies_ms = sorted(value * 1000 for value in latencies)
    print(
        f"defer→send latency (idle worker, {len(latencies_ms)} jobs): "
        f"median {statistics.median(latencies_ms):.1f} ms, "
        f"p90 {latencies_ms[int(len(latencies_ms) * 0.9) - 1]:.1f} ms, "
        f"max {latencies_ms[-1]:.1f} ms"
    )
    print(
        f"throughput: {args.jobs} send jobs over {args.instances} instances, concurrency {args.concurrency}: "
        f"{args.jobs / drained:.0f} jobs/s (deferring took {deferred:.2f} s)"
    )
    print(
        f"baseline:   the same sends made directly, one after another: {args.jobs / direct:.0f} sends/s"
    )
    print(f"ratio jobs / direct sends: {direct / drained:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
