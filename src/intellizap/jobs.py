"""The job queue (procrastinate, on our PostgreSQL) and the worker that runs it.

Features define their tasks on :data:`app` and list their module in :data:`TASK_MODULES`. Jobs are
durable and run at least once: a worker killed mid-job stops sending heartbeats, and the periodic
:func:`recover_stalled_jobs` hands its jobs to another worker. Tasks say which failures are
worth retrying: an exception whose ``transient`` attribute is False fails the job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import procrastinate
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from intellizap.db.engine import Database, libpq_url
from intellizap.evolution.client import EvolutionClient
from intellizap.llm import Llm
from intellizap.logging import get_logger
from intellizap.settings import Settings

log = get_logger(__name__)

#: Modules whose tasks the worker must know (imported when the worker starts).
TASK_MODULES = [
    "intellizap.jobs",
    "intellizap.evolution.sending",
    "intellizap.transcription.tasks",
    "intellizap.tenants.group_sync",
    "intellizap.summaries.scheduled",
    "intellizap.summaries.tasks",
    "intellizap.summaries.delivery",
    "intellizap.ingest.scheduled",
]


def _permanent(exception: BaseException) -> bool:
    """Errors say whether retrying can help (``transient``); unknown ones are retried."""
    return getattr(exception, "transient", True) is False


class Backoff(BaseRetryStrategy):
    """Exponential backoff with a cap; honours ``retry_after``; never retries permanent errors."""

    def __init__(self, *, max_attempts: int = 8, base: float = 5.0, cap: float = 900.0) -> None:
        self.max_attempts = max_attempts
        self.base = base
        self.cap = cap

    def gives_up(self, exception: BaseException, job: Job) -> bool:
        """Whether this failure ends the job: a permanent error, or its last attempt. Tasks ask
        it to record the reason (e.g. ``resumos.erro``) before the job fails for good."""
        return _permanent(exception) or job.attempts + 1 >= self.max_attempts

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if _permanent(exception):
            log.error(
                "job failed permanently", task=job.task_name, job_id=job.id, reason=str(exception)
            )
            return None
        if self.gives_up(exception, job):
            log.error(
                "job failed after its last attempt",
                task=job.task_name,
                job_id=job.id,
                attempts=job.attempts + 1,
                reason=str(exception),
            )
            return None
        wait = min(self.cap, self.base * 2**job.attempts)
        retry_after = getattr(exception, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > 0:
            wait = max(wait, min(float(retry_after), self.cap))
        log.info(
            "job will be retried",
            task=job.task_name,
            job_id=job.id,
            in_seconds=wait,
            reason=str(exception),
        )
        return RetryDecision(retry_in={"seconds": int(wait) or 1})


app = procrastinate.App(connector=procrastinate.PsycopgConnector(), import_paths=TASK_MODULES)


def connect(url: str) -> procrastinate.App:
    """:data:`app`, connected to the database at ``url`` (open it with ``open_async``).

    One process talks to one database, so the app itself gets the connector: its tasks and
    periodic deferrer refer back to it (``App.with_connector`` copies would not be used by them).
    """
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(url), kwargs={"options": "-c timezone=UTC"}, min_size=1, max_size=4
    )
    app.connector = connector
    app.job_manager.connector = connector
    return app


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What tasks need, built once per worker and handed to them by procrastinate."""

    settings: Settings
    database: Database
    evolution: EvolutionClient
    llm: Llm


def context_of(job_context: procrastinate.JobContext) -> WorkerContext:
    context: WorkerContext = job_context.additional_context["intellizap"]
    return context


@contextlib.asynccontextmanager
async def worker_context(settings: Settings, url: str) -> AsyncIterator[WorkerContext]:
    database = Database(url, pool_size=settings.worker_concurrency + 2)
    evolution = EvolutionClient.from_settings(settings)
    llm = Llm(settings.openai_base_url)
    try:
        yield WorkerContext(settings=settings, database=database, evolution=evolution, llm=llm)
    finally:
        await llm.aclose()
        await evolution.aclose()
        await database.dispose()


async def run_worker(queue: procrastinate.App, settings: Settings, url: str) -> None:
    """Run jobs until cancelled; on cancellation running jobs get ``shutdown_graceful_timeout``
    to finish, and unfinished ones are run again later by another worker.

    procrastinate's worker stops by itself when its database connection breaks (a PostgreSQL
    restart or failover); it is started again here, so the process recovers on its own.
    """
    async with worker_context(settings, url) as context:
        while True:
            try:
                await recover_stalled(
                    queue, settings
                )  # a restarted machine picks up its jobs at once
                await queue.run_worker_async(
                    concurrency=settings.worker_concurrency,
                    fetch_job_polling_interval=settings.job_poll_seconds,
                    abort_job_polling_interval=settings.job_poll_seconds,
                    update_heartbeat_interval=settings.worker_heartbeat_seconds,
                    stalled_worker_timeout=settings.stalled_job_seconds,
                    shutdown_graceful_timeout=30,
                    install_signal_handlers=False,
                    additional_context={"intellizap": context},
                    delete_jobs="successful",
                )
                log.warning("job worker stopped by itself (database connection lost?), restarting")
            except Exception as exc:
                log.warning("job worker failed, restarting it", error=str(exc))
            await asyncio.sleep(min(5.0, settings.job_poll_seconds * 5))


async def recover_stalled(queue: procrastinate.App, settings: Settings) -> int:
    """Run again the jobs of workers that stopped sending heartbeats (killed, frozen, cut off)."""
    manager = queue.job_manager
    stalled = list(
        await manager.get_stalled_jobs(seconds_since_heartbeat=settings.stalled_job_seconds)
    )
    for job in stalled:
        log.warning("re-running a stalled job", task=job.task_name, job_id=job.id)
        await manager.retry_job(job)
    return len(stalled)


@app.periodic(cron="* * * * * */15", periodic_id="recover-stalled-jobs")
@app.task(name="recover_stalled_jobs", queue="maintenance", pass_context=True)
async def recover_stalled_jobs(job_context: procrastinate.JobContext, timestamp: int) -> int:
    return await recover_stalled(job_context.app, context_of(job_context).settings)


async def defer(
    queue: procrastinate.App, task: str, *, delay: timedelta | None = None, **options: Any
) -> int | None:
    """Defer ``task`` by name; returns None when a job with the same ``queueing_lock`` is
    already waiting (deduplication, not an error)."""
    args = options.pop("args", {})
    if delay is not None:
        options["schedule_in"] = {"seconds": delay.total_seconds()}
    deferrer = queue.configure_task(task, allow_unknown=False, **options)
    try:
        job_id: int = await deferrer.defer_async(**args)
    except procrastinate.exceptions.AlreadyEnqueued:
        return None
    return job_id
