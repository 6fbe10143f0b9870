"""The report of ``bench/burst.py``: one run's figures from its samples and sends (time from the
due minute to the claim and to the first, median and last send; CPU-ms per summary of the
workers and of PostgreSQL, net of their idle CPU and raw; worker CPU busy % (and the % it was
ready to run but waited for a core), also over the steady part (10th to 90th percentile send);
slot occupancy (the mean, and how often every slot was taken with summaries waiting); the
workers' peak memory; LLM calls and 429s; whether every group got its summary exactly once),
the drain's timeline with ``--timeline``, the printed report with the direct baseline beside it,
and a labelled, linear extrapolation to 10,000 and 100,000 summaries within 60 s."""

from __future__ import annotations

import argparse
import math
import os
import statistics
from collections import Counter
from typing import Any

from burst_drain import Run, Sample
from burst_workers import slots_per_worker


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
    slots = slots_per_worker(args) * args.workers
    busy = [s for s in drain if s.at <= end.at]
    full = [s for s in busy if s.doing >= slots and s.summaries_waiting > 0]
    queued_at = next((s.at - run.due for s in drain if s.claimed >= args.groups), None)
    n = max(1, run.statuses["enviado"])
    net_worker_cpu = worker_cpu - run.idle_worker_cpu * wall
    net_postgres_cpu = postgres_cpu - run.idle_postgres_cpu * wall
    exactly_once = (
        len(run.per_group) == args.groups
        and set(run.per_group.values()) == {1}
        and run.statuses == Counter({"enviado": args.groups})
    )
    # The steady part of the drain: from the 10th to the 90th percentile send, without the
    # ramp (nothing to do while the first LLM answers are awaited) and the tail (the last paced
    # sends).
    middle = [start, end]
    if len(sends) >= 10:
        middle = [_nearest(drain, run.due + sends[int(q * (len(sends) - 1))]) for q in (0.1, 0.9)]
    middle_wall = max(1e-6, middle[1].at - middle[0].at)
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
        "worker_cpu_wait_pct": 100 * (end.worker_wait - start.worker_wait) / wall / args.workers,
        "steady_worker_cpu_busy_pct": (
            100 * (middle[1].worker_cpu - middle[0].worker_cpu) / middle_wall / args.workers
        ),
        "steady_worker_cpu_wait_pct": (
            100 * (middle[1].worker_wait - middle[0].worker_wait) / middle_wall / args.workers
        ),
        "slot_occupancy_pct": 100 * statistics.mean(s.doing for s in busy) / slots if busy else 0,
        "summary_slot_occupancy_pct": (
            100 * statistics.mean(s.summarizing for s in busy) / slots if busy else 0
        ),
        # The mean hides the waves of a burst: a wave of summaries taken at once is answered at
        # once, and while its answers are processed the slots may all be taken with jobs waiting.
        "slots_full_pct": 100 * len(full) / len(busy) if busy else 0,
        "worker_peak_memory_mb": run.worker_peak_mb,
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


def _nearest(samples: list[Sample], at: float) -> Sample:
    return min(samples, key=lambda sample: abs(sample.at - at))


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
    print(
        f"worker CPU busy      : {r['worker_cpu_busy_pct']:.0f} % of one core per worker,"
        f" and {r['worker_cpu_wait_pct']:.0f} % more ready to run but waiting for a core"
        " (held back by the machine's other work)"
    )
    print(
        f"  steady part         : {r['steady_worker_cpu_busy_pct']:.0f} % busy and "
        f"{r['steady_worker_cpu_wait_pct']:.0f} % waiting for a core, from the 10th to the 90th"
        " percentile send (no ramp, no tail)"
    )
    load = ", ".join(f"{x:.1f}" for x in r["load_average"])
    print(f"machine load average : {load} (other work competes for the cores)")
    print(
        f"slot occupancy       : {r['slot_occupancy_pct']:.0f} % of the slots "
        f"({r['summary_slot_occupancy_pct']:.0f} % writing summaries); all taken, with summaries"
        f" waiting, in {r['slots_full_pct']:.0f} % of the samples"
    )
    print(f"worker memory        : {r['worker_peak_memory_mb']:.0f} MiB at its peak (VmHWM)")
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
        # Twice the mean: a burst's summaries are taken and answered in waves (README).
        per_worker = min(2 * in_flight / max(1, math.ceil(worker_cores)), 1000)
        print(
            f"  {target:>7,} summaries in 60 s: {rate:,.0f}/s, {math.ceil(worker_cores)} worker "
            f"processes (cores), {postgres_cores:.1f} PostgreSQL cores, ~{in_flight:,.0f} LLM "
            f"calls in flight (WORKER_CONCURRENCY ~{per_worker:,.0f} each, for the waves), provider "
            f"limit >= {rate * 60:,.0f} requests/min"
        )
