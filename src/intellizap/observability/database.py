"""Metrics read from the database at scrape time: the job queue's depth, the workers alive and
the summaries waiting to be written.

Each scrape runs a handful of small queries on one connection kept by the collector, every one
bounded by an index or by planner statistics, so a scrape costs the same with 1,000 or 1,000,000
jobs in the table (bench/metrics.py): waiting and running jobs are counted through procrastinate's
partial indexes (only ``todo``/``doing`` rows are in them), the finished ones (``failed``,
``cancelled``, ``aborted``: kept forever) are estimated from the planner's statistics, which
autovacuum refreshes. Results are reused for ``min_interval`` seconds, so several scrapers (or
replicas' Prometheus jobs) do not multiply the load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from intellizap.db.engine import libpq_url
from intellizap.observability import repository
from intellizap.summaries.repository import WAITING_SQL

_FINISHED = ("failed", "cancelled", "aborted")


@dataclass(slots=True)
class Snapshot:
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    ready: dict[str, int] = field(default_factory=dict)
    oldest_ready_seconds: float = 0.0
    finished_estimate: dict[str, float] = field(default_factory=dict)
    workers: int = 0
    summaries_waiting: dict[str, int] = field(default_factory=dict)
    oldest_summary_seconds: float = 0.0
    duration: float = 0.0


class DatabaseCollector(Collector):
    """A Prometheus collector whose samples come from the database (see the module)."""

    def __init__(
        self,
        url: str,
        *,
        queues: Iterable[str] = (),
        worker_timeout: float,
        connect_timeout: float = 5.0,
        min_interval: float = 5.0,
    ) -> None:
        self._url = libpq_url(url)
        self._queues = set(queues)  # exported also when empty, like every queue once seen
        self._worker_timeout = worker_timeout
        self._connect_timeout = connect_timeout
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._snapshot: Snapshot | None = None
        self._taken = 0.0

    def describe(self) -> Iterable[Metric]:
        return []  # samples are only known at scrape time; nothing to check at registration

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def snapshot(self) -> Snapshot | None:
        """The current readings (None: the database did not answer)."""
        with self._lock:
            if self._snapshot is not None and time.monotonic() - self._taken < self._min_interval:
                return self._snapshot
            try:
                self._snapshot = self._read()
            except psycopg.Error:
                if self._connection is not None:
                    self._connection.close()
                self._connection = None
                self._snapshot = None
            self._taken = time.monotonic()
            return self._snapshot

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(1, int(self._connect_timeout)),
                options="-c statement_timeout=5000 -c timezone=UTC",
                application_name="intellizap-metrics",
            )
        return self._connection

    def _read(self) -> Snapshot:
        started = time.perf_counter()
        snapshot = Snapshot()
        connection = self._connect()
        with connection.cursor() as cursor:
            for queue, status, count, later in repository.active_jobs(cursor):
                self._queues.add(queue)
                snapshot.jobs[(queue, status)] = count
                if status == "todo":
                    snapshot.ready[queue] = count - later
            snapshot.oldest_ready_seconds = repository.oldest_ready_seconds(cursor)
            statistics = repository.job_status_statistics(cursor)
            if statistics is not None:
                values, frequencies, tuples = statistics
                for value, frequency in zip(values, frequencies, strict=False):
                    if value in _FINISHED:
                        snapshot.finished_estimate[value] = max(tuples, 0) * frequency
            snapshot.workers = repository.live_workers(cursor, self._worker_timeout)
            for origin, count, age in cursor.execute(WAITING_SQL).fetchall():
                snapshot.summaries_waiting[origin] = int(count)
                snapshot.oldest_summary_seconds = max(
                    snapshot.oldest_summary_seconds, float(age or 0)
                )
        snapshot.duration = time.perf_counter() - started
        return snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot()
        up = GaugeMetricFamily(
            "intellizap_metrics_database_up",
            "1 when this process could read the queue and summaries from the database",
        )
        up.add_metric([], 1 if snapshot is not None else 0)
        yield up
        if snapshot is None:
            return
        jobs = GaugeMetricFamily(
            "intellizap_queue_jobs",
            "Jobs waiting (todo) and running (doing), by queue; exact",
            labels=["queue", "status"],
        )
        for queue in sorted({queue for queue, _ in snapshot.jobs} | self._queues):
            for status in ("todo", "doing"):
                jobs.add_metric([queue, status], snapshot.jobs.get((queue, status), 0))
        yield jobs
        ready = GaugeMetricFamily(
            "intellizap_queue_ready_jobs",
            "Waiting jobs that are due now (not scheduled for later), by queue",
            labels=["queue"],
        )
        for queue in sorted(set(snapshot.ready) | self._queues):
            ready.add_metric([queue], snapshot.ready.get(queue, 0))
        yield ready
        yield GaugeMetricFamily(
            "intellizap_queue_oldest_ready_job_age_seconds",
            "How long the longest-waiting due job has waited (0 when none waits)",
            value=snapshot.oldest_ready_seconds,
        )
        finished = GaugeMetricFamily(
            "intellizap_queue_finished_jobs_estimate",
            "Jobs kept as failed, cancelled or aborted: an estimate from planner statistics",
            labels=["status"],
        )
        for status in _FINISHED:
            finished.add_metric([status], round(snapshot.finished_estimate.get(status, 0.0)))
        yield finished
        yield GaugeMetricFamily(
            "intellizap_queue_workers",
            "Workers whose heartbeat is recent (within STALLED_JOB_SECONDS)",
            value=snapshot.workers,
        )
        waiting = GaugeMetricFamily(
            "intellizap_summaries_waiting",
            "Summaries claimed or requested and not written yet, by origin",
            labels=["origin"],
        )
        for origin in sorted({"agendado", "sob_demanda", *snapshot.summaries_waiting}):
            waiting.add_metric([origin], snapshot.summaries_waiting.get(origin, 0))
        yield waiting
        yield GaugeMetricFamily(
            "intellizap_summaries_oldest_waiting_seconds",
            "How long the oldest summary not written yet has waited (0 when none)",
            value=snapshot.oldest_summary_seconds,
        )
        yield GaugeMetricFamily(
            "intellizap_metrics_database_scrape_seconds",
            "How long the last reading of these gauges took",
            value=snapshot.duration,
        )
