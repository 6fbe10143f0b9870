"""The ingest benchmark's ratios and printed report."""

from __future__ import annotations

import statistics
from typing import Any

STRONG = "asyncpg"
"""The baseline the target is measured against."""


def paired(runs: list[dict[str, Any]], name: str, against: str) -> list[float]:
    """``name``'s req/s over ``against``'s, round by round."""
    by_round: dict[int, dict[str, float]] = {}
    for run in runs:
        by_round.setdefault(run["round"], {})[run["target"]] = run["rps"]
    return [
        round(values[name] / values[against], 3)
        for values in by_round.values()
        if name in values and against in values
    ]


def print_report(report: dict[str, Any]) -> None:
    t = report["throughput"]
    lat = report["latency_at_half_load"]
    s, b = lat["service"], lat["baseline"]
    checks = report["checks"]

    def mark(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print()
    print("=== ingest benchmark (closed loop: wrk; ratios paired within each round) ===")
    for name, rps in t["best_rps"].items():
        print(
            f"{name:9} {rps:9.1f} req/s best  (median {t['median_rps'][name]:.1f})  "
            f"CPU {t['cpu_ms_per_request'][name]:.3f} ms/req"
        )
    for pair, values in t["paired_ratios"].items():
        line = f"{pair:18} {', '.join(f'{v:.2f}×' for v in values)}  (median {statistics.median(values):.2f}×)"
        if pair == f"service/{STRONG}":
            line += f"   target ≥ {t['target_ratio']}×  {mark(report['verdict']['throughput_ok'])}"
        print(line)
    if t["runs_with_server_below_90pct_cpu"]:
        print(
            f"note: server below 90% CPU in {', '.join(t['runs_with_server_below_90pct_cpu'])}: "
            "something else is loading the machine, figures are noisy"
        )
    if report["profile"]:
        print("=== where the service's CPU goes (py-spy, share of samples) ===")
        for line in report["profile"]["summary"]:
            print(f"  {line}")
    print(f"=== open loop at {lat['rate']:.0f} req/s (half the service's best) ===")
    for name, run in (("service", s), (STRONG, b)):
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
