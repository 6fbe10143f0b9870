"""CPU accounting from ``/proc`` for ``bench/burst.py``: the seconds of CPU a process has used
(with or without its waited-for children), and PostgreSQL's as a whole: the postmaster, its
exited children and its live children (the backends), so the burst can charge each summary its
share of the worker's and of the database's CPU; and how long a process was ready to run but
waited for a core (:func:`run_queue_wait`), which tells a worker held back by the machine's
other work from one with nothing to do; and a process's peak resident memory
(:func:`peak_memory_mb`)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def run_queue_wait(pid: int) -> float:
    """Seconds the threads of ``pid`` spent ready to run, waiting for a core (the second field
    of ``/proc/<pid>/task/<tid>/schedstat``; 0 where the kernel does not keep it)."""
    total = 0
    for schedstat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(schedstat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def peak_memory_mb(pid: int) -> float:
    """The most resident memory ``pid`` has used so far (``VmHWM``), in MiB; 0 if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
