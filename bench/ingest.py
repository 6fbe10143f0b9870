"""Ingest benchmark: the real ``POST /webhooks/evolution`` against a bare one-INSERT baseline.

Not a test. Everything runs on this machine over loopback, in one run, so the figures can be read
as ratios (machines are noisy, absolute numbers are not comparable between runs):

1. an embedded PostgreSQL in a temporary directory, migrated, with one tenant ``bench`` and N
   active groups;
2. the service (``python -m intellizap api``) and the baseline (``bench/baseline_app.py``), each
   one uvicorn worker process on a free loopback port, both on that database;
3. throughput: closed-loop ``wrk`` runs, interleaved (baseline, service, baseline, service…),
   each POSTing realistic Evolution bodies (the v2.3.6 group text fixture, a rotating group JID
   and a unique message id per request);
4. latency: an open-loop run at half the service's best throughput (requests go out on a fixed
   schedule, and latency is measured from the scheduled time, so a stalled server cannot hide its
   queueing delay), on the service and, for reference, on the baseline;
5. checks: every request answered 2xx, and the rows in ``mensagens`` match the answers.

    uv run python bench/ingest.py [--duration 15] [--connections 64] [--rounds 2]

Needs ``wrk`` (``apt-get install wrk``). Writes ``bench/results/ingest-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.ingest.credentials import instance_secret

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
FIXTURE = ROOT / "tests" / "fixtures" / "evolution" / "messages.upsert.text.group.json"
RESULTS_DIR = BENCH_DIR / "results"

INSTANCE = "bench"
SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 - a throwaway local secret
# What Evolution sends once `intellizap webhook set bench` configured the instance.
INSTANCE_SECRET = instance_secret(SECRET, INSTANCE)
PATH = "/webhooks/evolution"
TARGET_RATIO = 1.2
TARGET_P99_MS = 50.0
_JID_MARK = "\u0001JID\u0001"
_ID_MARK = "\u0001ID\u0001"


# -- the request body ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BodyTemplate:
    """The fixture as compact JSON, cut around the group JID and the message id."""

    head: str
    mid: str
    tail: str

    @classmethod
    def from_fixture(cls) -> BodyTemplate:
        body = json.loads(FIXTURE.read_text())
        body["instance"] = INSTANCE
        body["data"]["key"]["remoteJid"] = _JID_MARK
        body["data"]["key"]["id"] = _ID_MARK
        text = orjson.dumps(body).decode()
        head, rest = text.split(orjson.dumps(_JID_MARK).decode()[1:-1])
        mid, tail = rest.split(orjson.dumps(_ID_MARK).decode()[1:-1])
        return cls(head, mid, tail)

    def body(self, jid: str, message_id: str) -> bytes:
        return f"{self.head}{jid}{self.mid}{message_id}{self.tail}".encode()


def group_jids(count: int) -> list[str]:
    return [f"1203634000000{n:05d}@g.us" for n in range(count)]


# -- processes, database, measurements ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.log = self.cwd / f"{self.name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*self.command, "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
            )

    def wait_ready(self, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"{self.base_url}/health", timeout=2, trust_env=False).status_code
                    == 200
                ):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {within:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def seed(url: str, jids: list[str]) -> list[uuid.UUID]:
    """One tenant ``bench`` with every group active; returns the group ids in ``jids`` order."""
    with psycopg.connect(url, autocommit=True) as conn:
        tenant_id = conn.execute(
            "INSERT INTO usuarios (instancia) VALUES (%s) RETURNING id", (INSTANCE,)
        ).fetchone()
        assert tenant_id is not None
        ids = []
        for jid in jids:
            row = conn.execute(
                "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, nome) "
                "VALUES (%s, %s, true, %s) RETURNING id",
                (jid, tenant_id[0], f"bench {jid}"),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
    return ids


def count_rows(url: str, tag: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM mensagens WHERE id_externo LIKE %s", (f"{tag}-%",)
        ).fetchone()
    assert row is not None
    return int(row[0])


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


# -- closed loop: wrk --------------------------------------------------------------------------

_LUA = r"""
-- Generated by bench/ingest.py: realistic Evolution bodies, a unique message id per request.
local tag = "@TAG@"
local jids = { @JIDS@ }
local head = [==[@HEAD@]==]
local mid = [==[@MID@]==]
local tail = [==[@TAIL@]==]
local headers = {
  ["Content-Type"] = "application/json",
  ["X-Webhook-Instance"] = "@INSTANCE@",
  ["X-Webhook-Secret"] = "@SECRET@",
}
local threads = 0
local counter = 0
local prefix = ""

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  prefix = tag .. "-" .. thread_number .. "-"
end

function request()
  counter = counter + 1
  local jid = jids[(counter % #jids) + 1]
  return wrk.format("POST", "@PATH@", headers, head .. jid .. mid .. prefix .. counter .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d,\"write\":%d," ..
    "\"status\":%d,\"timeout\":%d,\"mean_us\":%.1f,\"p50_us\":%.0f,\"p90_us\":%.0f," ..
    "\"p99_us\":%.0f,\"max_us\":%.0f}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


def wrk_script(tag: str, template: BodyTemplate, jids: list[str]) -> str:
    replacements = {
        "@TAG@": tag,
        "@JIDS@": ", ".join(f'"{jid}"' for jid in jids),
        "@HEAD@": template.head,
        "@MID@": template.mid,
        "@TAIL@": template.tail,
        "@INSTANCE@": INSTANCE,
        "@SECRET@": INSTANCE_SECRET,
        "@PATH@": PATH,
    }
    script = _LUA
    for placeholder, value in replacements.items():
        script = script.replace(placeholder, value)
    return script


def run_wrk(
    server: Server,
    *,
    tag: str,
    template: BodyTemplate,
    jids: list[str],
    threads: int,
    connections: int,
    duration: float,
    workdir: Path,
) -> dict[str, Any]:
    script = workdir / f"{tag}.lua"
    script.write_text(wrk_script(tag, template, jids))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"{server.base_url}{PATH}",
    ]
    cpu_before, busy_before = cpu_seconds(server.pid), machine_busy()
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    cpu_after, busy_after = cpu_seconds(server.pid), machine_busy()
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}):\n{completed.stderr}")
    match = re.search(r"^BENCH_JSON (\{.*\})$", completed.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no summary in wrk's output:\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", completed.stdout)
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    ok = raw["requests"] - raw["status"]
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    return {
        "target": server.name,
        "tag": tag,
        "requests": raw["requests"],
        "ok": ok,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else raw["status"],
        "socket_errors": socket_errors,
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1),
        "latency_ms": {
            "mean": round(raw["mean_us"] / 1000, 2),
            "p50": round(raw["p50_us"] / 1000, 2),
            "p90": round(raw["p90_us"] / 1000, 2),
            "p99": round(raw["p99_us"] / 1000, 2),
            "max": round(raw["max_us"] / 1000, 2),
        },
        "server_cpu_percent": round(100 * (cpu_after - cpu_before) / seconds, 1),
        "server_cpu_ms_per_request": round(1000 * (cpu_after - cpu_before) / max(1, ok), 3),
        "machine_cpu_percent": round(100 * busy, 1),
        "wrk_output": completed.stdout,
    }


# -- open loop: a fixed-rate generator ----------------------------------------------------------


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def open_loop(
    port: int,
    *,
    rate: float,
    duration: float,
    build: Callable[[int], bytes],
    max_connections: int,
    request_timeout: float = 5.0,
) -> dict[str, Any]:
    """Send ``rate`` requests per second for ``duration`` seconds on a fixed schedule, whatever
    the server does, over up to ``max_connections`` keep-alive connections. Latency is measured
    from each request's *scheduled* time (no coordinated omission): when the generator or the
    server falls behind, the delay shows up in the latency, not in fewer requests."""
    total = int(rate * duration)
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    opened = 0
    latencies: list[float] = []
    lags: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    in_flight: set[asyncio.Task[None]] = set()

    async def connect() -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return _Connection(reader, writer)

    async def fire(conn: _Connection, payload: bytes, scheduled: float) -> None:
        nonlocal opened
        try:
            async with asyncio.timeout(request_timeout):
                conn.writer.write(payload)
                head = await conn.reader.readuntil(b"\r\n\r\n")
                length = _content_length(head)
                if length:
                    await conn.reader.readexactly(length)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            errors[type(exc).__name__] += 1
            conn.writer.close()
            opened -= 1  # the dispatcher opens a fresh one when needed
            return
        latencies.append(time.perf_counter() - scheduled)
        statuses[int(head[9:12])] += 1
        idle.put_nowait(conn)

    for _ in range(min(16, max_connections)):
        idle.put_nowait(await connect())
        opened += 1
    # perf_counter, not loop.time(): uvloop's clock only has millisecond resolution.
    cpu_before = time.process_time()
    start = time.perf_counter() + 0.05
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle.empty() and opened < max_connections:
            opened += 1
            conn = await connect()
        else:
            conn = await idle.get()
        lags.append(time.perf_counter() - scheduled)
        task = asyncio.create_task(fire(conn, build(n), scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    sending = time.perf_counter() - start
    if in_flight:
        await asyncio.wait(set(in_flight), timeout=request_timeout + 5)
    cpu_used = time.process_time() - cpu_before
    while not idle.empty():
        idle.get_nowait().writer.close()

    latencies.sort()
    lags.sort()

    def pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 2)

    return {
        "target_rate": round(rate, 1),
        "achieved_send_rate": round(total / sending, 1),
        "sent": total,
        "answered": len(latencies),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "errors": dict(errors),
        "connections_used": opened,
        "latency_ms": {
            "p50": pct(latencies, 0.50),
            "p90": pct(latencies, 0.90),
            "p99": pct(latencies, 0.99),
            "p999": pct(latencies, 0.999),
            "max": round(1000 * latencies[-1], 2) if latencies else float("nan"),
        },
        "send_lag_ms": {"p99": pct(lags, 0.99), "max": pct(lags, 1.0)},
        "generator_cpu_percent": round(100 * cpu_used / sending, 1),
    }


def run_open_loop(
    server: Server,
    *,
    tag: str,
    template: BodyTemplate,
    jids: list[str],
    rate: float,
    duration: float,
    max_connections: int,
) -> dict[str, Any]:
    request_head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nX-Webhook-Instance: {INSTANCE}\r\n"
        f"X-Webhook-Secret: {INSTANCE_SECRET}\r\n"
    )

    def build(n: int) -> bytes:
        body = template.body(jids[n % len(jids)], f"{tag}-{n}")
        return f"{request_head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    coroutine = open_loop(
        server.port, rate=rate, duration=duration, build=build, max_connections=max_connections
    )
    try:
        import uvloop  # optional: much cheaper per request than asyncio's own loop
    except ImportError:
        uvloop = None
    result: dict[str, Any] = (uvloop.run if uvloop else asyncio.run)(coroutine)
    return {"target": server.name, "tag": tag, **result}


# -- the run ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark POST /webhooks/evolution against a one-INSERT baseline."
    )
    parser.add_argument("--duration", type=float, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/service pairs")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per target")
    parser.add_argument("--groups", type=int, default=20, help="active groups of the tenant")
    parser.add_argument(
        "--latency-duration", type=float, default=30, help="seconds of the open-loop run"
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=None,
        help="open-loop rate in req/s (default: half the service's best throughput)",
    )
    parser.add_argument(
        "--open-connections", type=int, default=128, help="open-loop connection cap"
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    return parser.parse_args()


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def embedded_database(workdir: Path) -> Iterator[str]:
    server = EmbeddedPostgres(workdir)
    url = server.start()
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def check_rows(url: str, run: dict[str, Any], slack: int) -> None:
    """Rows stored under the run's tag vs requests answered 2xx (requests still in flight when
    the load stopped are stored but not counted by the client: up to ``slack`` more rows)."""
    time.sleep(0.5)
    rows = count_rows(url, run["tag"])
    answered = run["ok"] if "ok" in run else run["statuses"].get("200", 0)
    run["rows_stored"] = rows
    run["rows_ok"] = answered <= rows <= answered + slack


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    template = BodyTemplate.from_fixture()
    jids = group_jids(args.groups)
    with contextlib.ExitStack() as cleanup:
        # Unwound in reverse: the servers stop, then the database, then the directory goes.
        workdir = Path(tempfile.mkdtemp(prefix="izbench-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        url = cleanup.enter_context(embedded_database(workdir))
        migrate.upgrade(url)
        group_ids = seed(url, jids)
        base_env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DATABASE_", "WEBHOOK_", "TENANT_"))
        }
        service = Server(
            "service",
            [sys.executable, "-m", "intellizap", "api"],
            {
                **base_env,
                "DATABASE_URL": url,
                "WEBHOOK_SECRET": SECRET,
                "ENV": "development",
                "LOG_LEVEL": "WARNING",
                "DATA_DIR": str(workdir / "data"),
                # All the load comes from one instance: lift the per-instance flood limit.
                "WEBHOOK_RATE_PER_INSTANCE": "1000000000",
                "WEBHOOK_BURST_PER_INSTANCE": "1000000000",
            },
            workdir,  # not the repository: its .env must not leak into the run
        )
        baseline = Server(
            "baseline",
            [sys.executable, str(BENCH_DIR / "baseline_app.py")],
            {
                **base_env,
                "BASELINE_DATABASE_URL": url,
                "BASELINE_GROUP_ID": str(group_ids[0]),
            },
            workdir,
        )
        servers = [baseline, service]
        for server in servers:
            cleanup.callback(server.stop)
            server.start()
        for server in servers:
            server.wait_ready()
        answer = smoke_test(service, template, jids[0])
        if answer.get("events", {}).get("stored") != 1:
            raise RuntimeError(f"the service did not store the smoke-test message: {answer}")
        smoke_test(baseline, template, jids[0])

        def wrk(server: Server, tag: str, seconds: float) -> dict[str, Any]:
            return run_wrk(
                server,
                tag=tag,
                template=template,
                jids=jids,
                threads=args.threads,
                connections=args.connections,
                duration=seconds,
                workdir=workdir,
            )

        print(f"warming up ({args.warmup:.0f} s each)…", flush=True)
        for server in servers:
            wrk(server, f"w{server.name[0]}", args.warmup)

        runs: list[dict[str, Any]] = []
        for round_number in range(1, args.rounds + 1):
            for server in servers:
                run = wrk(server, f"{server.name[0]}{round_number}", args.duration)
                check_rows(url, run, args.connections)
                runs.append(run)
                print(
                    f"  round {round_number} {server.name:8} {run['rps']:8.1f} req/s  "
                    f"p99 {run['latency_ms']['p99']:7.2f} ms  "
                    f"server CPU {run['server_cpu_percent']:5.1f}%  "
                    f"non-2xx {run['non_2xx']}  socket errors {run['socket_errors']}",
                    flush=True,
                )

        def rps(name: str) -> list[float]:
            return [run["rps"] for run in runs if run["target"] == name]

        best = {name: max(rps(name)) for name in ("baseline", "service")}
        median = {name: statistics.median(rps(name)) for name in ("baseline", "service")}
        ratio = best["service"] / best["baseline"]
        median_ratio = median["service"] / median["baseline"]
        # Each service run against the baseline run just before it: robust to slow drift.
        paired = [s["rps"] / b["rps"] for b, s in zip(runs[0::2], runs[1::2], strict=True)]
        # CPU time per request of the (single-process) server: robust to other load on the
        # machine as long as each server is the bottleneck of its own run.
        cpu_ms = {
            name: statistics.median(
                run["server_cpu_ms_per_request"] for run in runs if run["target"] == name
            )
            for name in ("baseline", "service")
        }
        unsaturated = [run["tag"] for run in runs if run["server_cpu_percent"] < 90]

        rate = args.latency_rate or best["service"] / 2
        print(f"open loop at {rate:.0f} req/s for {args.latency_duration:.0f} s…", flush=True)
        latency_runs = []
        for server, tag in ((service, "ls"), (baseline, "lb")):
            run = run_open_loop(
                server,
                tag=tag,
                template=template,
                jids=jids,
                rate=rate,
                duration=args.latency_duration,
                max_connections=args.open_connections,
            )
            check_rows(url, run, args.open_connections)
            latency_runs.append(run)
        latency = latency_runs[0]
        latency_baseline = latency_runs[1]

    errors = sum(run["non_2xx"] + run["socket_errors"] for run in runs) + sum(
        sum(run["errors"].values()) + run["sent"] - run["statuses"].get("200", 0)
        for run in latency_runs
    )
    rows_ok = all(run["rows_ok"] for run in [*runs, *latency_runs])
    kept_up = latency["achieved_send_rate"] >= 0.98 * latency["target_rate"]
    p99 = latency["latency_ms"]["p99"]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {key: value for key, value in vars(args).items() if key not in ("no_save",)},
        "throughput": {
            "baseline_rps_best": best["baseline"],
            "service_rps_best": best["service"],
            "ratio": round(ratio, 3),
            "baseline_rps_median": median["baseline"],
            "service_rps_median": median["service"],
            "median_ratio": round(median_ratio, 3),
            "paired_ratios": [round(value, 3) for value in paired],
            "paired_ratio_median": round(statistics.median(paired), 3),
            "baseline_cpu_ms_per_request": cpu_ms["baseline"],
            "service_cpu_ms_per_request": cpu_ms["service"],
            "cpu_efficiency_ratio": round(cpu_ms["baseline"] / cpu_ms["service"], 3),
            "runs_with_server_below_90pct_cpu": unsaturated,
            "target_ratio": TARGET_RATIO,
        },
        "latency_at_half_load": {
            "rate": latency["target_rate"],
            "service": latency,
            "baseline": latency_baseline,
            "target_p99_ms": TARGET_P99_MS,
        },
        "checks": {
            "errors": errors,
            "rows_match_answers": rows_ok,
            "generator_kept_up": kept_up,
        },
        "verdict": {
            "throughput_ok": ratio >= TARGET_RATIO,
            "latency_ok": p99 < TARGET_P99_MS,
        },
        "runs": [{k: v for k, v in run.items() if k != "wrk_output"} for run in runs],
        "wrk_outputs": {run["tag"]: run["wrk_output"] for run in runs},
    }
    print_report(report)
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"ingest-{stamp}.json"
        path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        print(f"\nreport written to {path.relative_to(ROOT)}")
    passed = all(report["verdict"].values()) and errors == 0 and rows_ok
    return 0 if passed else 1


def print_report(report: dict[str, Any]) -> None:
    t = report["throughput"]
    lat = report["latency_at_half_load"]
    s, b = lat["service"], lat["baseline"]
    checks = report["checks"]

    def mark(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print()
    print("=== ingest benchmark (closed loop: wrk; ratios against the baseline of this run) ===")
    print(
        f"baseline   {t['baseline_rps_best']:9.1f} req/s  (median {t['baseline_rps_median']:.1f})"
    )
    print(f"service    {t['service_rps_best']:9.1f} req/s  (median {t['service_rps_median']:.1f})")
    print(
        f"ratio      {t['ratio']:9.2f}×       (median {t['median_ratio']:.2f}×)   "
        f"target ≥ {t['target_ratio']}×  {mark(report['verdict']['throughput_ok'])}"
    )
    print(
        f"paired     {', '.join(f'{r:.2f}×' for r in t['paired_ratios'])} "
        f"(median {t['paired_ratio_median']:.2f}×)"
    )
    print(
        f"CPU/req    baseline {t['baseline_cpu_ms_per_request']:.3f} ms, "
        f"service {t['service_cpu_ms_per_request']:.3f} ms "
        f"→ efficiency {t['cpu_efficiency_ratio']:.2f}×"
    )
    if t["runs_with_server_below_90pct_cpu"]:
        print(
            f"note: server below 90% CPU in {', '.join(t['runs_with_server_below_90pct_cpu'])}: "
            "something else is loading the machine, figures are noisy"
        )
    print(f"=== open loop at {lat['rate']:.0f} req/s (half the service's best) ===")
    for name, run in (("service", s), ("baseline", b)):
        ms = run["latency_ms"]
        print(
            f"{name:9}  p50 {ms['p50']:6.2f} ms  p90 {ms['p90']:6.2f}  p99 {ms['p99']:6.2f}  "
            f"p99.9 {ms['p999']:6.2f}  max {ms['max']:7.2f}  "
            f"(sent {run['achieved_send_rate']:.0f}/s, lag p99 {run['send_lag_ms']['p99']} ms, "
            f"generator CPU {run['generator_cpu_percent']}%)"
        )
    print(
        f"p99 service {s['latency_ms']['p99']:.2f} ms   target < {lat['target_p99_ms']:.0f} ms  "
        f"{mark(report['verdict']['latency_ok'])}"
    )
    print("=== checks ===")
    print(f"errors (non-2xx, socket, timeouts)  {checks['errors']}")
    print(
        "rows stored = 2xx answers           "
        + ", ".join(f"{run['tag']}: {run['rows_stored']}/{run['ok']}" for run in report["runs"])
        + f", ls: {s['rows_stored']}/{s['statuses'].get('200', 0)}"
        + f", lb: {b['rows_stored']}/{b['statuses'].get('200', 0)}"
        + f"  {mark(checks['rows_match_answers'])}"
    )
    print(f"open-loop generator kept up         {mark(checks['generator_kept_up'])}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers and the embedded database were stopped", file=sys.stderr)
        sys.exit(130)
