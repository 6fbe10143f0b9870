"""Ingest benchmark: the real ``POST /webhooks/evolution`` against bare one-INSERT baselines.

Not a test. Everything runs on this machine over loopback, in one run, so the figures can be read
as ratios (machines are noisy, absolute numbers are not comparable between runs):

1. an embedded PostgreSQL in a temporary directory, migrated, with one tenant ``bench`` and N
   active groups;
2. the targets, each one uvicorn worker process on a free loopback port, all on that database:
   the service (``python -m intellizap api``), the **asyncpg** baseline (bare FastAPI route, one
   asyncpg INSERT per request: the strong baseline the target is set against), the **psycopg**
   baseline (the same route on the service's driver) and, with ``--compare REF``, the service as
   it was at git revision REF (``before``);
3. throughput: closed-loop ``wrk`` runs, interleaved round by round over every target, each
   POSTing realistic Evolution bodies (the v2.3.6 group text fixture, a rotating group JID and a
   unique message id per request); ratios are paired within each round;
4. with ``--profile FILE``: one more service run sampled by py-spy, and where its CPU went;
5. latency: an open-loop run at half the service's best throughput (requests go out on a fixed
   schedule, and latency is measured from the scheduled time, so a stalled server cannot hide its
   queueing delay), on the service and, for reference, on the asyncpg baseline;
6. checks: every request answered 2xx, and the rows in ``mensagens`` match the answers.

    uv run python bench/ingest.py [--duration 15] [--connections 32] [--rounds 3] [--compare REF]

Needs ``wrk`` (``apt-get install wrk``). Writes ``bench/results/ingest-<timestamp>.json``.

This file runs the benchmark; its parts live next to it: the database in ``ingest_database.py``,
the targets and their smoke test in ``ingest_targets.py``, the load in ``loadgen.py``, the
server processes in ``processes.py``, the profile in ``profile_report.py`` and the printed
report in ``ingest_report.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ingest_database import check_rows, embedded_database, seed
from ingest_report import STRONG, paired, print_report
from ingest_targets import build_targets, smoke_test
from intellizap.db import migrate
from loadgen import BodyTemplate, group_jids, run_open_loop, run_wrk
from processes import Server
from profile_report import profile_service

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

TARGET_RATIO = 1.5
"""Service req/s ÷ asyncpg baseline req/s (median of the paired ratios)."""
TARGET_P99_MS = 50.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark POST /webhooks/evolution against bare one-INSERT baselines."
    )
    parser.add_argument("--duration", type=float, default=15, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every target")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per target")
    parser.add_argument("--groups", type=int, default=20, help="active groups of the tenant")
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="also run the service as it was at this git revision (target 'before')",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        type=Path,
        help="sample one more service run with py-spy (raw stacks to FILE) and summarise it",
    )
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


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.profile and shutil.which("py-spy") is None:
        print("py-spy is not on PATH (see bench/README.md, 'Profiling')", file=sys.stderr)
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
        targets = build_targets(args, url, group_ids[0], workdir)
        by_name = {target.name: target for target in targets}
        for server in targets:
            cleanup.callback(server.stop)
            server.start()
        for server in targets:
            server.wait_ready()
        for server in targets:
            answer = smoke_test(server, template, jids[0])
            if server.name in ("service", "before") and answer.get("events") != {"stored": 1}:
                raise RuntimeError(f"{server.name} did not store the smoke-test message: {answer}")

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
        for server in targets:
            wrk(server, f"w{server.name[:2]}", args.warmup)

        runs: list[dict[str, Any]] = []
        for round_number in range(1, args.rounds + 1):
            for server in targets:
                run = wrk(server, f"{server.name[:2]}{round_number}", args.duration)
                run["round"] = round_number
                check_rows(url, run, args.connections)
                runs.append(run)
                print(
                    f"  round {round_number} {server.name:8} {run['rps']:8.1f} req/s  "
                    f"p99 {run['latency_ms']['p99']:7.2f} ms  "
                    f"server CPU {run['server_cpu_percent']:5.1f}%  "
                    f"{run['server_cpu_ms_per_request']:.3f} ms/req  "
                    f"non-2xx {run['non_2xx']}  socket errors {run['socket_errors']}",
                    flush=True,
                )

        profile = None
        if args.profile:
            print(f"profiling the service for {args.duration:.0f} s…", flush=True)
            profile = profile_service(
                by_name["service"],
                lambda: wrk(by_name["service"], "pr", args.duration),
                output=args.profile,
                seconds=args.duration,
            )

        names = [target.name for target in targets]
        best = {name: max(r["rps"] for r in runs if r["target"] == name) for name in names}
        cpu_ms = {
            name: statistics.median(
                r["server_cpu_ms_per_request"] for r in runs if r["target"] == name
            )
            for name in names
        }
        ratios = {
            f"{name}/{against}": paired(runs, name, against)
            for name, against in [
                ("service", STRONG),
                ("service", "psycopg"),
                ("before", STRONG),
                ("service", "before"),
            ]
            if name in names and against in names
        }
        unsaturated = [r["tag"] for r in runs if r["server_cpu_percent"] < 90]

        rate = args.latency_rate or best["service"] / 2
        print(f"open loop at {rate:.0f} req/s for {args.latency_duration:.0f} s…", flush=True)
        latency_runs = []
        for server, tag in ((by_name["service"], "ls"), (by_name[STRONG], "lb")):
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
        latency, latency_baseline = latency_runs

    errors = sum(run["non_2xx"] + run["socket_errors"] for run in runs) + sum(
        sum(run["errors"].values()) + run["sent"] - run["statuses"].get("200", 0)
        for run in latency_runs
    )
    rows_ok = all(run["rows_ok"] for run in [*runs, *latency_runs])
    kept_up = latency["achieved_send_rate"] >= 0.98 * latency["target_rate"]
    main_ratio = statistics.median(ratios[f"service/{STRONG}"])
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "config": {key: str(value) for key, value in vars(args).items() if key != "no_save"},
        "throughput": {
            "best_rps": best,
            "median_rps": {
                name: statistics.median(r["rps"] for r in runs if r["target"] == name)
                for name in names
            },
            "paired_ratios": ratios,
            "paired_ratio_medians": {k: statistics.median(v) for k, v in ratios.items()},
            "cpu_ms_per_request": cpu_ms,
            "runs_with_server_below_90pct_cpu": unsaturated,
            "target_ratio": TARGET_RATIO,
        },
        "profile": profile,
        "latency_at_half_load": {
            "rate": latency["target_rate"],
            "service": latency,
            "baseline": latency_baseline,
            "target_p99_ms": TARGET_P99_MS,
        },
        "checks": {"errors": errors, "rows_match_answers": rows_ok, "generator_kept_up": kept_up},
        "verdict": {
            "throughput_ok": main_ratio >= TARGET_RATIO,
            "latency_ok": latency["latency_ms"]["p99"] < TARGET_P99_MS,
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


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers and the embedded database were stopped", file=sys.stderr)
        sys.exit(130)
