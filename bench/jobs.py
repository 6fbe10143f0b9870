"""Benchmark of the job queue: defer→start latency and throughput of real send jobs.

Runs the real worker (``intellizap.task_modules.run_worker``) against a throwaway embedded PostgreSQL and
the test suite's fake Evolution server (real HTTP on loopback), with no send pacing:

1. latency: one ``send_text`` job at a time on an idle worker, time from ``defer`` to the fake
   receiving the send (LISTEN/NOTIFY wakes the worker; the polling backstop is not involved);
2. throughput: N jobs spread over many instances (one lock each), time to drain them all,
   against a baseline of the same number of sends made directly with the Evolution client;
3. pacing: P instances with M messages each, paced ``--interval`` apart per instance, with the
   fake answering in 150 ms. Paced sends wait without holding a slot, so the drain should take
   about (M - 1) x interval whatever P is; it is compared with that bound, and with the least
   time a design that sleeps the interval inside the job would need (P x M x interval /
   concurrency). Slot occupancy is sampled through the drain.

    uv run python bench/jobs.py [--jobs 400] [--instances 40] [--concurrency 8]
                                [--paced-instances 200] [--paced-messages 3] [--interval 1]
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

from embedded_db import embedded_database
from intellizap.db import migrate
from intellizap.db.engine import Database
from intellizap.evolution.client import EvolutionClient
from intellizap.evolution.sending import queue_text
from intellizap.settings import Settings
from intellizap.task_modules import connect_queue, run_worker

#: How long the fake Evolution takes to answer a send in the pacing run.
LATENCY = 0.15


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
    parser.add_argument("--paced-instances", type=int, default=200)
    parser.add_argument("--paced-messages", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="intellizap-jobs-") as workdir,
        FakeEvolution.running() as evo,
        embedded_database(Path(workdir)) as url,
    ):
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
            for n in range(max(args.instances, args.paced_instances)):
                tenant_id = uuid.uuid4()
                await session.execute(
                    text("INSERT INTO usuarios (id, instancia) VALUES (:id, :name)"),
                    {"id": tenant_id, "name": f"bench-{n}"},
                )
                tenants.append(tenant_id)
        queue = connect_queue(url)
        async with queue.open_async():
            worker = asyncio.create_task(run_worker(queue, settings, url))
            await asyncio.sleep(2)  # worker registered and listening

            latencies = []
            for n in range(args.latency_samples):
                before = len(evo.sent)
                start = time.monotonic()
                await queue_text(
                    queue,
                    database,
                    tenant_id=tenants[0],
                    number="120363400000000001@g.us",
                    text=f"ping {n}",
                    max_chars=3500,
                    key=f"latency:{n}",
                )
                await wait_for_sends(evo, before + 1)
                latencies.append(evo.sent[-1].at - start)
                await asyncio.sleep(0.05)

            before = len(evo.sent)
            start = time.monotonic()
            for n in range(args.jobs):
                await queue_text(
                    queue,
                    database,
                    tenant_id=tenants[n % args.instances],
                    number="120363400000000001@g.us",
                    text=f"msg {n}",
                    max_chars=3500,
                    key=f"throughput:{n}",
                )
            deferred = time.monotonic() - start
            await wait_for_sends(evo, before + args.jobs)
            drained = time.monotonic() - start
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

            # Everything queued first, then one worker drains it: the spread from the first send
            # to the last is what pacing and slots allow.
            paced = settings.model_copy(update={"send_min_interval_seconds": args.interval})
            evo.delay("/message/sendText/", LATENCY)
            total = args.paced_instances * args.paced_messages
            before = len(evo.sent)
            start = time.monotonic()
            for m in range(args.paced_messages):
                for n in range(args.paced_instances):
                    await queue_text(
                        queue,
                        database,
                        tenant_id=tenants[n],
                        number="120363400000000001@g.us",
                        text=f"paced {m}",
                        max_chars=3500,
                        key=f"paced:{n}:{m}",
                    )
            paced_deferred = time.monotonic() - start
            worker = asyncio.create_task(run_worker(queue, paced, url))
            sampler = asyncio.create_task(occupancy(database))
            await wait_for_sends(evo, before + total, within=900)
            sampler.cancel()
            samples = await asyncio.gather(sampler, return_exceptions=True)
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            evo.delay("/message/sendText/", 0)
            arrivals = [item.at for item in evo.sent[before:]]
            paced_drained = max(arrivals) - min(arrivals)

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
    requests = total * LATENCY / args.concurrency
    bound = max((args.paced_messages - 1) * args.interval, requests)
    sleeping = total * (args.interval + LATENCY) / args.concurrency
    print(
        f"pacing: {args.paced_instances} instances x {args.paced_messages} messages, "
        f"{args.interval:g} s apart, concurrency {args.concurrency}, fake answering in "
        f"{LATENCY * 1000:.0f} ms (queueing them took {paced_deferred:.1f} s)"
    )
    print(
        f"  first to last send: {paced_drained:.1f} s; bound (the larger of (M-1) x interval and "
        f"the requests' own time, P x M x latency / concurrency): {bound:.1f} s -> "
        f"{paced_drained / bound:.2f}x the bound"
    )
    print(
        f"  a worker sleeping the interval in its slot needs at least P x M x (interval + "
        f"latency) / concurrency = {sleeping:.0f} s: {sleeping / paced_drained:.1f}x the measured"
    )
    busy = samples[0] if isinstance(samples[0], list) else []
    if busy:
        print(
            f"  send jobs running (slots taken) during the drain: mean {statistics.mean(busy):.2f},"
            f" max {max(busy)} of {args.concurrency} ({len(busy)} samples)"
        )


async def occupancy(database: Database) -> list[int]:
    """``doing`` send jobs every 50 ms until cancelled (then the samples are the result)."""
    samples: list[int] = []
    query = text(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'send_text' AND status = 'doing'"
    )
    try:
        while True:
            async with database.session() as session:
                samples.append(int((await session.execute(query)).scalar_one()))
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        return samples


if __name__ == "__main__":
    asyncio.run(main())
