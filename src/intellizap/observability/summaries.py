"""Metrics of summaries and of the scheduler that claims them.

``intellizap_summaries_total`` is counted where a summary leaves ``pendente``
(``summaries/delivery.py``, from the statement that changes it); the summaries still waiting are
read from the database at scrape time (:mod:`.database`). The scheduler tick is timed with::

    with observe_tick() as tick:
        claims = await claim_due_summaries(...)
        tick.claimed(len(claims))
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

SUMMARIES = Counter(
    "intellizap_summaries_total",
    "Summaries that reached a final status (enviado, erro), by origin (agendado, sob_demanda)",
    ["status", "origin"],
)
TICK_SECONDS = Histogram(
    "intellizap_scheduler_tick_duration_seconds",
    "Duration of the summary scheduler's tick (claiming every due summary)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TICK_CLAIMED = Counter(
    "intellizap_scheduler_claimed_total", "Scheduled summaries claimed by the scheduler's ticks"
)


@dataclass(slots=True)
class _Tick:
    def claimed(self, count: int) -> None:
        TICK_CLAIMED.inc(max(count, 0))


@contextmanager
def observe_tick() -> Iterator[_Tick]:
    started = time.perf_counter()
    try:
        yield _Tick()
    finally:
        TICK_SECONDS.observe(time.perf_counter() - started)
