"""The job queue (procrastinate, on our PostgreSQL) and the worker that runs it.

Features define their tasks on :data:`app` and list their module in :data:`TASK_MODULES`. Jobs are
durable and run at least once: a worker killed mid-job stops sending heartbeats, and the periodic
:func:`recover_stalled_jobs` hands its jobs to another worker. Tasks say which failures are
worth retrying: an exception whose ``transient`` attribute is False fails the job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import procrastinate
import sqlalchemy.exc
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
    "intellizap.ingest.scheduled",
]


def _permanent(exception: BaseException) -> bool:
    """Errors say whether retrying can help (``transient``); unknown ones are retried."""
    return getattr(exception, "transient", True) is False


def _throttled(exception: BaseException) -> bool:
    """A provider asking us to slow down (``throttled``): not a failure of the work itself."""
    return getattr(exception, "throttled", False) is True


def _deadline_of(job: Job, arg: str | None) -> datetime | None:
    value = job.task_kwargs.get(arg) if arg else None
    if not isinstance(value, str):
        return None
    try:
        deadline = datetime.fromisoformat(value)
    except ValueError:
        return None
    return deadline if deadline.tzinfo is not None else deadline.replace(tzinfo=UTC)


class Backoff(BaseRetryStrategy):
    """When a failed job runs again, and when it stops trying.

    - Permanent errors (``transient = False``) are never retried.
    - A throttle (``throttled = True``, e.g. the LLM's rate limit) is retried when the provider
      says (``retry_after``), not after an ever-growing backoff: waiting longer than asked only
      leaves the provider idle while work piles up.
    - Other failures wait ``base * 2**attempts`` (capped at ``cap``), and at least
      ``retry_after`` when the error carries one.
    - Every wait is jittered (``± jitter``, and a throttle's by up to ``jitter`` more), so jobs
      that failed together do not all come back at the same instant.
    - With ``deadline_arg``, the job's own deadline (an ISO-8601 instant in that task argument)
      bounds the retries, not a count: the job stops when its next attempt would start after the
      deadline. Jobs without one stop after ``max_attempts``.

    The wait of one attempt of one job is deterministic (seeded by job id and attempt), so
    :meth:`gives_up` and procrastinate's own call to :meth:`get_retry_decision` always agree.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 8,
        base: float = 5.0,
        cap: float = 900.0,
        jitter: float = 0.25,
        deadline_arg: str | None = None,
    ) -> None:
        self.max_attempts = max_attempts
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.deadline_arg = deadline_arg

    def wait(self, exception: BaseException, job: Job) -> float:
        """Seconds before the next attempt of ``job`` after ``exception``."""
        rng = random.Random(f"{job.id}:{job.attempts}")  # noqa: S311 - jitter, not secrecy
        retry_after = getattr(exception, "retry_after", None)
        hint = float(retry_after) if isinstance(retry_after, int | float) else 0.0
        hint = min(max(hint, 0.0), self.cap)
        if _throttled(exception) and hint > 0:
            return hint + rng.uniform(0, max(1.0, hint * self.jitter))
        exponential = min(self.cap, self.base * 2.0 ** int(job.attempts))
        wait = exponential * rng.uniform(1 - self.jitter, 1 + self.jitter)
        if hint > 0:
            wait = max(wait, hint * rng.uniform(1, 1 + self.jitter))
        return max(1.0, min(wait, self.cap * (1 + self.jitter)))

    def gives_up(self, exception: BaseException, job: Job, *, now: datetime | None = None) -> bool:
        """Whether this failure ends the job: a permanent error, a retry that would start after
        the job's deadline, or (without a deadline) its last attempt. Tasks ask it to record the
        reason (e.g. ``resumos.erro``) before the job fails for good."""
        if _permanent(exception):
            return True
        deadline = _deadline_of(job, self.deadline_arg)
        if deadline is not None:
            now = now or datetime.now(UTC)
            return now + timedelta(seconds=self.wait(exception, job)) > deadline
        return job.attempts + 1 >= self.max_attempts

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if _permanent(exception):
            log.error(
                "job failed permanently", task=job.task_name, job_id=job.id, reason=str(exception)
            )
            return None
        if self.gives_up(exception, job):
            log.error(
                "job failed: no attempt left before its deadline or attempt limit",
                task=job.task_name,
                job_id=job.id,
                attempts=job.attempts + 1,
                reason=str(exception),
            )
            return None
        wait = self.wait(exception, job)
        log.info(
            "job will be retried",
            task=job.task_name,
            job_id=job.id,
            in_seconds=round(wait, 1),
            reason=str(exception),
        )
        return RetryDecision(retry_in={"milliseconds": int(wait * 1000)})


#: What the user is told when a job gives up: a text, or a function of the exception.
Reason = str | Callable[[BaseException], str]


def reason_for(
    exception: BaseException, reasons: Mapping[type[BaseException], Reason], default: Reason
) -> str:
    """The first reason whose exception type matches (so list subclasses first)."""
    reason = next((r for kind, r in reasons.items() if isinstance(exception, kind)), default)
    return reason(exception) if callable(reason) else reason


@contextlib.asynccontextmanager
async def final_failure(
    job_context: procrastinate.JobContext,
    retry: Backoff,
    *,
    reasons: Mapping[type[BaseException], Reason],
    default: Reason,
    record: Callable[[str], Awaitable[object]],
) -> AsyncIterator[None]:
    """Around a task's work: when a failure is final (``retry.gives_up``), tell the user why with
    ``record(reason)`` before the exception fails the job; otherwise let procrastinate retry.

        async with jobs.final_failure(job_context, RETRY, reasons=REASONS, default="…",
                                      record=lambda reason: fail(db, summary_id, reason)):
            return await summarize(…)
    """
    try:
        yield
    except Exception as exc:
        if retry.gives_up(exc, job_context.job):
            try:
                await record(reason_for(exc, reasons, default))
            except Exception as record_error:
                log.error(
                    "could not record why a job failed",
                    task=job_context.job.task_name,
                    job_id=job_context.job.id,
                    error=str(record_error),
                )
        raise


app = procrastinate.App(connector=procrastinate.PsycopgConnector(), import_paths=TASK_MODULES)

QUEUE_APPLICATION_NAME = "intellizap-queue"


def connect(url: str, *, pool_size: int = 4) -> procrastinate.App:
    """:data:`app`, connected to the database at ``url`` (open it with ``open_async``).

    One process talks to one database, so the app itself gets the connector: its tasks and
    periodic deferrer refer back to it (``App.with_connector`` copies would not be used by them).
    The pool (``JOB_QUEUE_POOL_SIZE``) carries the queue's own short statements: fetching a job,
    recording its end, heartbeats, and defers made outside a transaction; the LISTEN connection
    is separate.
    """
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(url),
        # Named, so the queue's connections can be told apart in pg_stat_activity.
        kwargs={"options": "-c timezone=UTC", "application_name": QUEUE_APPLICATION_NAME},
        min_size=1,
        max_size=pool_size,
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
    # Sized to the database time the jobs need, not to their number: a job holds a connection
    # only for its short statements, never while it waits for the LLM or Evolution.
    database = Database(
        url,
        pool_size=settings.database_pool_size,
        connect_timeout=settings.database_connect_timeout,
    )
    evolution = EvolutionClient.from_settings(settings)
    llm = Llm(settings.openai_base_url, max_wait=settings.llm_max_wait_seconds)
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
        await _run_start_hooks(queue)
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


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to queue with :func:`defer_in_transaction`."""

    args: dict[str, Any]
    lock: str | None = None
    queueing_lock: str | None = None
    priority: int = 0
    scheduled_at: datetime | None = None


# procrastinate's own SQL function for deferring jobs (the one its Python API calls), fed with
# arrays: thousands of jobs cost one statement and no Python object per job.
_DEFER_MANY = text(
    """
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW(:queue, :task, j.priority, j.lock, j.queueing_lock, CAST(j.args AS jsonb),
                   j.scheduled_at)::procrastinate_job_to_defer_v1
        FROM unnest(CAST(:priorities AS integer[]), CAST(:locks AS text[]),
                    CAST(:queueing_locks AS text[]), CAST(:args AS text[]),
                    CAST(:scheduled_at AS timestamptz[]))
             WITH ORDINALITY AS j (priority, lock, queueing_lock, args, scheduled_at, n)
        ORDER BY j.n
    ))) AS id
    """
)


async def defer_in_transaction(
    session: AsyncSession, queue: procrastinate.App, task: str, specs: Sequence[JobSpec]
) -> list[int]:
    """Queue jobs of ``task`` in ``session``'s transaction, in one statement however many.

    The jobs exist exactly when the transaction commits: a row claimed and its job are never one
    without the other (no orphan to sweep up, no job for a rolled-back claim), and the defer
    uses the session's connection, not the queue's small pool (shared with the running jobs).
    Workers are woken as by any defer (procrastinate's insert trigger notifies at commit).
    A job whose ``queueing_lock`` is already waiting makes the statement, and so the whole
    transaction, fail (``AlreadyEnqueued``): give each job its own lock, or defer it alone.
    """
    if not specs:
        return []
    template = queue.configure_task(task, allow_unknown=False).job  # the task's queue
    try:
        ids = (
            await session.execute(
                _DEFER_MANY,
                {
                    "queue": template.queue,
                    "task": template.task_name,
                    "priorities": [spec.priority for spec in specs],
                    "locks": [spec.lock for spec in specs],
                    "queueing_locks": [spec.queueing_lock for spec in specs],
                    "args": [orjson.dumps(spec.args).decode() for spec in specs],
                    "scheduled_at": [spec.scheduled_at for spec in specs],
                },
            )
        ).scalars()
        return list(ids)
    except sqlalchemy.exc.IntegrityError as exc:
        raise procrastinate.exceptions.AlreadyEnqueued(
            f"a {task} job with one of these queueing locks is already waiting"
        ) from exc


#: A defer this big changes the queue's size enough to make its planner statistics misleading.
BULK_DEFER = 100

_ANALYZE_QUEUE = text("ANALYZE procrastinate_jobs")


async def refresh_queue_statistics(database: Database) -> None:
    """After a bulk defer (a 09:00 burst): analyze the job table at once.

    Workers fetch jobs through a plan PostgreSQL cached while the queue was small; after
    thousands of jobs arrive at once that plan scans the queue once per waiting job (a second a
    fetch with 2,000 waiting: a worker took one job per second until autovacuum analyzed the
    table a minute later, see bench/burst.py). ``ANALYZE`` updates the statistics and so
    invalidates those plans everywhere; it samples the table and takes milliseconds.
    """
    try:
        async with database.session() as session:
            await session.execute(_ANALYZE_QUEUE)
    except Exception as exc:  # an optimisation: the jobs are queued either way
        log.warning("could not analyze the job queue after a bulk defer", error=str(exc))


#: Run once when a worker starts, before it takes jobs (e.g. loading data that would otherwise
#: stall the event loop on the first job). Features add theirs with :func:`prepare_at_start`.
_START_HOOKS: list[Callable[[], object]] = []


def prepare_at_start(hook: Callable[[], object]) -> None:
    """Have every worker run ``hook()`` (blocking work is fine: it runs in a thread) at start."""
    _START_HOOKS.append(hook)


async def _run_start_hooks(queue: procrastinate.App) -> None:
    queue.perform_import_paths()  # type: ignore[no-untyped-call] # modules register their hooks
    for hook in _START_HOOKS:
        await asyncio.to_thread(hook)
