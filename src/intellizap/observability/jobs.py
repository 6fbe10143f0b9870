"""The job wrapper: a procrastinate worker middleware around every job.

Before the job it binds the tenant context of the job's arguments to the log context
(``usuario_id``, ``instancia``, ``grupo_id``, as the webhook path does), so every line the job
writes — and procrastinate's own "ended with status" line — says whose work it was. It measures
the job's queue latency (ready → started), its duration and its outcome. (Summaries reaching a
final status, ``intellizap_summaries_total``, are counted where the status changes:
``summaries/delivery.py``.) Installed by the composition root
(:func:`intellizap.task_modules.run_worker`), so that the queue module (shared infrastructure)
never reads the features' tables this lookup reads.

The lookup reads the tables the arguments point at (``resumos``, ``mensagens``, ``usuarios``)
through procrastinate's own connection, one indexed query before the job; a failed lookup never
fails the job.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import procrastinate
import structlog
from procrastinate.exceptions import JobAborted
from procrastinate.jobs import Job
from procrastinate.worker import Worker
from prometheus_client import Counter, Histogram

from intellizap.observability import repository
from intellizap.retries import Backoff

_log = structlog.stdlib.get_logger(__name__)

JOBS = Counter(
    "intellizap_jobs_total",
    "Jobs run, by task and outcome (succeeded; retry: failed, will run again; failed: for good;"
    " interrupted: stopped by a shutdown or an abort)",
    ["task", "outcome"],
)
JOB_SECONDS = Histogram(
    "intellizap_job_duration_seconds",
    "How long jobs ran, by task",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
QUEUE_LATENCY = Histogram(
    "intellizap_job_queue_latency_seconds",
    "Time from a job being ready (queued, or due when scheduled) to a worker starting it",
    ["queue"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _lookup(job_id: int | None, args: dict[str, Any]) -> dict[str, Any]:
    number = args.get("number")
    return {
        "job_id": job_id,
        "summary_id": _uuid(args.get("summary_id")),
        "message_id": _uuid(args.get("message_id")),
        "tenant_id": _uuid(args.get("tenant_id")),
        "number": number if isinstance(number, str) else None,
        "send_id": send_id if isinstance(send_id := args.get("send_id"), int) else None,
    }


async def _query(lookup: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        row = await lookup
    except Exception as exc:  # an unparseable id, a lost connection: the job still runs
        _log.debug("job context lookup failed", error=type(exc).__name__)
        return None
    return row


def _bind(job: Job, row: dict[str, Any] | None) -> None:
    context: dict[str, Any] = {"job_id": job.id, "task": job.task_name}
    for name in ("usuario_id", "instancia", "grupo_id"):
        if row is not None and row.get(name):
            context[name] = row[name]
    # Left bound for the rest of the job's asyncio task (each job runs in its own), so that
    # procrastinate's outcome line after the job carries the context too.
    structlog.contextvars.bind_contextvars(**context)


def _ready_since(job: Job, queued_at: datetime | None) -> datetime | None:
    moments = [moment for moment in (queued_at, job.scheduled_at) if moment is not None]
    return max(moments) if moments else None


def _outcome(exc: BaseException, context: procrastinate.JobContext, worker: Worker) -> str:
    if isinstance(exc, asyncio.CancelledError | JobAborted):
        return "interrupted"
    task = worker.app.tasks.get(context.job.task_name)
    if not isinstance(exc, Exception) or task is None:
        return "failed"
    strategy = task.retry_strategy
    if isinstance(strategy, Backoff):  # asked without logging its decision a second time
        retried = strategy.decide(exc, context.job) is not None
    else:
        retried = task.get_retry_exception(exception=exc, job=context.job) is not None
    return "retry" if retried else "failed"


async def observe_job(
    call_next: Callable[[], Awaitable[Any]],
    context: procrastinate.JobContext,
    worker: Worker,
) -> Any:
    """The worker middleware (see the module's docstring)."""
    job = context.job
    app = worker.app
    params = _lookup(job.id, job.task_kwargs)
    row = await _query(repository.job_context(app, params))
    _bind(job, row)
    ready = _ready_since(job, row.get("queued_at") if row else None)
    if ready is not None:
        latency = (datetime.now(UTC) - ready).total_seconds()
        QUEUE_LATENCY.labels(job.queue).observe(max(latency, 0.0))
    started = time.perf_counter()
    outcome = "succeeded"
    try:
        return await call_next()
    except BaseException as exc:
        outcome = _outcome(exc, context, worker)
        raise
    finally:
        JOB_SECONDS.labels(job.task_name).observe(time.perf_counter() - started)
        JOBS.labels(job.task_name, outcome).inc()
