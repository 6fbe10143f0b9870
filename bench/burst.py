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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import text
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.db.engine import Database

ZONE = "America/Sao_Paulo"
PLATFORM_KEY = "sk-bench-platform-key-0123456789"
EVOLUTION_KEY = "bench-evolution-global-key-0123"
SUMMARY = (
    "📌 *Principais assuntos*\n• O pedido 3 foi entregue.\n✅ *Decisões*\n• Reunião na quinta."
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

FILL = """
INSERT INTO usuarios (instancia, "horaResumo", fuso_horario)
SELECT 'burst-' || n, :at, :zone FROM generate_series(1, :tenants) AS n;
INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa, nome)
SELECT '1203634' || lpad(g::text, 11, '0') || '@g.us', u.id, true, true, false, 'Grupo ' || g
FROM generate_series(1, :groups) AS g
JOIN usuarios u ON u.instancia = 'burst-' || (1 + (g - 1) % :tenants);
INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor", "numero-autor",
                       data_mensagem, tipo)
SELECT gr.id, 'M' || gr.id || '-' || m, 'mensagem ' || m || ' sobre o pedido ' || (m % 7),
       'Pessoa ' || (m % 4), '55119999' || lpad((m % 4)::text, 5, '0'),
       now() - make_interval(secs => 60 * (:messages - m)), 'texto'
FROM grupos gr CROSS JOIN generate_series(1, :messages) AS m;
"""
PROGRESS = """
SELECT (SELECT count(*) FROM resumos),
       (SELECT count(*) FROM resumos WHERE status <> 'pendente'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND task_name = 'summarize'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND task_name = 'summarize'),
       (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND attempts > 0)
"""


# -- CPU accounting from /proc ----------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu(pid: int, *, with_children: bool = True) -> float:
    """Seconds of CPU used by ``pid`` (and its waited-for children)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def postgres_cpu(postmaster: int) -> float:
    """The postmaster's CPU, its exited children's, and its live children's (the backends)."""
    total = process_cpu(postmaster)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == postmaster:
                total += process_cpu(int(entry.name), with_children=False)
    return total


# -- the run ----------------------------------------------------------------------------------------


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


async def fill(database: Database, args: argparse.Namespace, due_local: datetime) -> None:
    async with database.session() as session:
        for statement in FILL.strip().split(";\n"):
            await session.execute(
                text(statement),
                {
                    "at": due_local.strftime("%H:%M"),
                    "zone": ZONE,
                    "tenants": args.tenants,
                    "groups": args.groups,
                    "messages": args.messages,
                },
            )
    async with database.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))


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
            )
        )
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a worker process exited during the run")
        if claimed >= expected and finished >= expected and sent() >= expected:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the drain did not finish within {within:.0f} s")


async def burst(args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="intellizap-burst-") as workdir,
        FakeOpenAI.running() as ai,
        FakeEvolution.running() as evo,
    ):
        ai.completion = SUMMARY
        ai.latency = args.llm_latency
        if args.throttle:
            ai.throttle(requests_per_second=args.throttle)
        evo.delay("/message/sendText/", args.send_latency)
        server = EmbeddedPostgres(Path(workdir))
        url = server.start()
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
        profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
        log = args.worker_log.open("ab") if args.worker_log else None
        workers = [
            subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
                [sys.executable, *(profile if n == 0 else []), "-m", "intellizap", "worker"],
                env=env,
                stdout=log or subprocess.DEVNULL,
                stderr=log or (subprocess.DEVNULL if args.quiet else None),
            )
            for n in range(args.workers)
        ]
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
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    worker.kill()
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


def report(args: argparse.Namespace, run: Run, baseline: dict[str, float] | None) -> dict[str, Any]:
    sends = sorted(run.sends)
    first_at = run.samples[0]
    drain = [s for s in run.samples if s.at >= run.due]
    start = drain[0]
    last_send = run.due + (sends[-1] if sends else 0.0)
    end = min(drain, key=lambda s: abs(s.at - last_send))
    wall = max(1e-6, end.at - start.at)
    worker_cpu = end.worker_cpu - start.worker_cpu
    postgres_cpu = end.postgres_cpu - start.postgres_cpu
    slots = (args.concurrency or 100) * args.workers
    busy = [s for s in drain if s.at <= end.at]
    queued_at = next((s.at - run.due for s in drain if s.claimed >= args.groups), None)
    n = max(1, run.statuses["enviado"])
    net_worker_cpu = worker_cpu - run.idle_worker_cpu * wall
    net_postgres_cpu = postgres_cpu - run.idle_postgres_cpu * wall
    exactly_once = (
        len(run.per_group) == args.groups
        and set(run.per_group.values()) == {1}
        and run.statuses == Counter({"enviado": args.groups})
    )
    result: dict[str, Any] = {
        "groups": args.groups,
        "tenants": args.tenants,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "throttle_rps": args.throttle,
        "llm_latency": args.llm_latency,
        "send_latency": args.send_latency,
        "send_interval": args.send_interval,
        "claimed_and_queued_after_s": queued_at,
        "first_send_s": sends[0] if sends else None,
        "median_send_s": statistics.median(sends) if sends else None,
        "last_send_s": sends[-1] if sends else None,
        "summaries_per_s": n / max(1e-6, sends[-1]) if sends else 0.0,
        "worker_cpu_ms_per_summary": 1000 * net_worker_cpu / n,
        "postgres_cpu_ms_per_summary": 1000 * net_postgres_cpu / n,
        "worker_cpu_ms_per_summary_raw": 1000 * worker_cpu / n,
        "postgres_cpu_ms_per_summary_raw": 1000 * postgres_cpu / n,
        "idle_cpu_pct": {
            "worker": 100 * run.idle_worker_cpu,
            "postgres": 100 * run.idle_postgres_cpu,
        },
        "load_average": os.getloadavg(),
        "worker_cpu_busy_pct": 100 * worker_cpu / wall / args.workers,
        "slot_occupancy_pct": 100 * statistics.mean(s.doing for s in busy) / slots if busy else 0,
        "summary_slot_occupancy_pct": (
            100 * statistics.mean(s.summarizing for s in busy) / slots if busy else 0
        ),
        "llm_calls": run.llm_calls,
        "llm_refused_429": run.llm_refused,
        "statuses": dict(run.statuses),
        "reasons": dict(run.reasons),
        "exactly_once": exactly_once,
        "sampled_from_s": first_at.at - run.due,
        "baseline": baseline,
    }
    if args.timeline:
        sent_by = sorted(run.sends)
        print(
            "  t(s)  claimed finished  doing waiting  summarizing  summaries-waiting  retrying"
            "  sent  worker-cpu%"
        )
        previous = drain[0]
        for sample in drain[::4]:
            t = sample.at - run.due
            sent_so_far = sum(1 for x in sent_by if x <= t)
            cpu = (
                100 * (sample.worker_cpu - previous.worker_cpu) / max(1e-6, sample.at - previous.at)
            )
            previous = sample
            print(
                f"{t:6.1f} {sample.claimed:8} {sample.finished:8} {sample.doing:6} "
                f"{sample.waiting:7} {sample.summarizing:12} {sample.summaries_waiting:18} "
                f"{sample.retrying:9} {sent_so_far:5} {cpu:11.0f}"
            )
    print_report(result)
    return result


def print_report(r: dict[str, Any]) -> None:
    throttle = f", throttled to {r['throttle_rps']} req/s" if r["throttle_rps"] else ""
    interval = r["send_interval"] if r["send_interval"] is not None else "default"
    concurrency = r["concurrency"] or "default"
    print(
        f"=== burst: {r['groups']:,} summaries, {r['workers']} worker(s), concurrency "
        f"{concurrency}, LLM {r['llm_latency']} s{throttle}, send {r['send_latency']} s, "
        f"send interval {interval} ==="
    )
    print(
        f"claimed and queued   : +{r['claimed_and_queued_after_s']:.1f} s after the due minute"
        if r["claimed_and_queued_after_s"] is not None
        else "claimed and queued   : never"
    )
    if r["first_send_s"] is not None:
        print(
            f"sends                : first +{r['first_send_s']:.1f} s, median "
            f"+{r['median_send_s']:.1f} s, last +{r['last_send_s']:.1f} s "
            f"({r['summaries_per_s']:.1f} summaries/s)"
        )
    print(
        f"CPU per summary      : worker {r['worker_cpu_ms_per_summary']:.1f} ms, "
        f"PostgreSQL {r['postgres_cpu_ms_per_summary']:.1f} ms (net of their idle CPU, "
        f"{r['idle_cpu_pct']['worker']:.1f} % and {r['idle_cpu_pct']['postgres']:.1f} % of a "
        f"core; raw {r['worker_cpu_ms_per_summary_raw']:.1f} and "
        f"{r['postgres_cpu_ms_per_summary_raw']:.1f} ms)"
    )
    print(f"worker CPU busy      : {r['worker_cpu_busy_pct']:.0f} % of one core per worker")
    load = ", ".join(f"{x:.1f}" for x in r["load_average"])
    print(f"machine load average : {load} (other work competes for the cores)")
    print(
        f"slot occupancy       : {r['slot_occupancy_pct']:.0f} % of the slots "
        f"({r['summary_slot_occupancy_pct']:.0f} % writing summaries)"
    )
    print(f"LLM calls            : {r['llm_calls']:,} ({r['llm_refused_429']:,} refused with 429)")
    print(
        f"outcome              : {r['statuses']}{' ' + str(r['reasons']) if r['reasons'] else ''}"
    )
    print(
        f"exactly once         : {'yes' if r['exactly_once'] else 'NO'} "
        "(every group got its summary once, every resumos row enviado)"
    )
    if r["throttle_rps"] and r["last_send_s"]:
        floor = r["groups"] / r["throttle_rps"]
        print(
            f"drain vs N / rate    : {r['last_send_s']:.0f} s vs {floor:.0f} s "
            f"({r['last_send_s'] / floor:.2f}x)"
        )
    base = r["baseline"]
    if base:
        print(
            f"baseline (direct)    : last send +{base['drain_s']:.1f} s, client CPU "
            f"{base['cpu_ms_per_summary']:.1f} ms per summary (LLM call + send, no queue, "
            "no database)"
        )
        if r["last_send_s"]:
            print(
                f"ratio to baseline    : drain {r['last_send_s'] / base['drain_s']:.2f}x, worker "
                f"CPU {r['worker_cpu_ms_per_summary'] / base['cpu_ms_per_summary']:.2f}x"
            )
    print_extrapolation(r)


def print_extrapolation(r: dict[str, Any]) -> None:
    """Labelled as such: straight lines from this run's per-summary costs."""
    worker_ms = r["worker_cpu_ms_per_summary"]
    postgres_ms = r["postgres_cpu_ms_per_summary"]
    latency = r["llm_latency"] + r["send_latency"]
    print("extrapolated (linear, from this run's CPU per summary; workers at 80 % of a core):")
    for target in (10_000, 100_000):
        rate = target / 60
        worker_cores = rate * worker_ms / 1000 / 0.8
        postgres_cores = rate * postgres_ms / 1000 / 0.8
        in_flight = rate * latency
        per_worker = min(in_flight / max(1, math.ceil(worker_cores)), 1000)
        print(
            f"  {target:>7,} summaries in 60 s: {rate:,.0f}/s, {math.ceil(worker_cores)} worker "
            f"processes (cores), {postgres_cores:.1f} PostgreSQL cores, ~{in_flight:,.0f} LLM "
            f"calls in flight (WORKER_CONCURRENCY ~{per_worker:,.0f} each), provider "
            f"limit >= {rate * 60:,.0f} requests/min"
        )


# -- the baseline: the same calls, directly ------------------------------------------------------------


async def direct_client(llm_url: str, evolution_url: str, n: int, concurrency: int) -> float:
    """Seconds of CPU the calls themselves took (imports excluded)."""
    import httpx
    import openai

    started = time.process_time()
    llm = openai.AsyncOpenAI(api_key=PLATFORM_KEY, base_url=llm_url, max_retries=0)
    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
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
    concurrency = (args.concurrency or 100) * args.workers
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
