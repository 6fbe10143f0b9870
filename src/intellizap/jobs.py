"""The job queue (procrastinate, on our PostgreSQL) and the worker that runs it.

Features define their tasks on :data:`blueprint`, which only holds the definitions (deferring
through it raises ``UnboundTaskError``); the application's composition root
(:mod:`intellizap.task_modules`) names the modules that define them, gets a connected queue from
:func:`connect` and hands the worker its middleware. Jobs are durable and run at least once: a
worker killed mid-job stops sending heartbeats, and the periodic :func:`recover_stalled_jobs`
hands its jobs to another worker. Tasks say which failures are worth retrying (:mod:`intellizap.retries`): an
exception whose ``transient`` attribute is False fails the job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import select
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import procrastinate
import psycopg
import psycopg_pool
import sqlalchemy.exc
from procrastinate.middleware import WorkerMiddleware
from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap import job_repository
from intellizap.db.engine import Database, libpq_url
from intellizap.evolution.client import EvolutionClient
from intellizap.llm import Llm
from intellizap.logging import get_logger
from intellizap.retries import Backoff as Backoff  # re-exported: tasks use jobs.Backoff
from intellizap.retries import Later as Later
from intellizap.retries import Reason as Reason
from intellizap.retries import final_failure as final_failure
from intellizap.retries import reason_for as reason_for
from intellizap.settings import Settings

log = get_logger(__name__)

#: Where features define their tasks and periodic tasks (``@jobs.blueprint.task``). Never
#: connected: :func:`connect` gives each caller its own connected app with these tasks bound to it.
blueprint = procrastinate.Blueprint()

QUEUE_APPLICATION_NAME = "intellizap-queue"


def connect(url: str, *, pool_size: int = 4, task_modules: Iterable[str] = ()) -> procrastinate.App:
    """A queue app connected to the database at ``url`` (open it with ``open_async``), knowing
    every task defined on :data:`blueprint` once ``task_modules`` are imported.

    The composition root passes the feature modules that define tasks, so this module never
    names a feature. Each call builds its own app: nothing global is reconnected. Its tasks are
    copies bound to it, not ``App.with_connector``'s shared ones: a task defers through the app
    it belongs to (the periodic deferrer too), and :data:`blueprint` is bound to no database.
    The pool (``JOB_QUEUE_POOL_SIZE``) carries the queue's own short statements: fetching a job,
    recording its end, heartbeats, and defers made outside a transaction; the LISTEN connection
    is separate.

    Each of those is one statement (a procrastinate function, or a lookup of ours), so the
    connections are in autocommit: without it psycopg wraps every statement in BEGIN and COMMIT,
    two more round trips each. And a connection taken from the pool is checked without a round
    trip (:func:`_check_pooled`), not with procrastinate's ``SELECT ''`` before every statement.
    """
    modules = list(task_modules)
    for module in modules:
        importlib.import_module(module)
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(url),
        # Named, so the queue's connections can be told apart in pg_stat_activity.
        kwargs={"options": "-c timezone=UTC", "application_name": QUEUE_APPLICATION_NAME},
        # Not ``autocommit`` in ``kwargs``: procrastinate's LISTEN connection passes its own.
        configure=_autocommit,
        min_size=1,
        max_size=pool_size,
        pool_factory=_queue_pool,
    )
    queue = procrastinate.App(connector=connector, import_paths=modules)
    _bind_tasks(queue)
    return queue


async def _autocommit(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


def _queue_pool(**options: Any) -> psycopg_pool.AsyncConnectionPool:
    """procrastinate's pool, with :func:`_check_pooled` instead of its check."""
    return psycopg_pool.AsyncConnectionPool(**{**options, "check": _check_pooled})


async def _check_pooled(conn: psycopg.AsyncConnection[Any]) -> None:
    """Whether a connection taken from the queue's pool still works, without a round trip when
    nothing says otherwise. A connection the server ended while it sat in the pool (a restart,
    a failover, an idle timeout, ``pg_terminate_backend``) has something to read — the server's
    last message, or the end of the stream — and only then is it checked the way psycopg does
    (an empty query); the pool replaces it if that fails. Raises when it is unusable."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        if not poller.poll(0):
            return
    await psycopg_pool.AsyncConnectionPool.check_connection(conn)


def _bind_tasks(queue: procrastinate.App) -> None:
    """Give ``queue`` a copy of each task and periodic task of :data:`blueprint`, names unchanged.

    (``Blueprint.add_tasks_from`` would rename them under a namespace and rebind the originals,
    so a second app — tests, the commands — could not have them.)"""
    bound: dict[int, procrastinate.tasks.Task[Any, Any, Any]] = {}
    for name, task in blueprint.tasks.items():
        if name in queue.tasks:  # procrastinate's built-in tasks, which every app has
            continue
        if id(task) not in bound:  # one task may be listed under its aliases too
            bound[id(task)] = copy.copy(task)
            bound[id(task)].blueprint = queue
        queue.tasks[name] = bound[id(task)]
    for periodic in blueprint.periodic_registry.periodic_tasks.values():
        queue.periodic_registry.register_task(
            task=bound.get(id(periodic.task), periodic.task),
            cron=periodic.cron,
            periodic_id=periodic.periodic_id,
            configure_kwargs=periodic.configure_kwargs,
        )


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
    llm = Llm(
        settings.openai_base_url,
        max_wait=settings.llm_max_wait_seconds,
        connections=settings.worker_concurrency,
    )
    try:
        yield WorkerContext(settings=settings, database=database, evolution=evolution, llm=llm)
    finally:
        await llm.aclose()
        await evolution.aclose()
        await database.dispose()


async def run_worker(
    queue: procrastinate.App,
    settings: Settings,
    url: str,
    *,
    middleware: Sequence[WorkerMiddleware] = (),
) -> None:
    """Run jobs until cancelled; on cancellation running jobs get ``shutdown_graceful_timeout``
    to finish, and unfinished ones are run again later by another worker. ``middleware`` wraps
    every job (the composition root's: logging context and metrics, which read the features'
    tables this module does not know).

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
                    worker_middleware=list(middleware),
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


@blueprint.periodic(cron="* * * * * */15", periodic_id="recover-stalled-jobs")
@blueprint.task(name="recover_stalled_jobs", queue="maintenance", pass_context=True)
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


async def run_here(job_context: procrastinate.JobContext, task: str, args: dict[str, Any]) -> None:
    """Run ``task``'s function now, inside the running job, instead of queueing a job for it.

    For a follow-up that is cheap and would otherwise cost a job of its own (a fetch, a
    finish, a slot): it runs with the running job's context (``job_context``) and raises
    whatever it raises. It is durable as long as the running job does not end before it
    returns: a worker killed in between runs the whole job again, follow-up included (so the
    follow-up must tolerate running twice, as any job must). An async task only.
    """
    definition = job_context.app.tasks.get(task)
    if definition is None:
        raise procrastinate.exceptions.TaskNotFound(f"no task named {task} is defined")
    await (
        definition.func(job_context, **args) if definition.pass_context else definition.func(**args)
    )


def deferrer(tasks: procrastinate.Blueprint, task: str) -> job_repository.Deferrer:
    """What queues jobs of ``task`` in a session's transaction, from a statement's own rows.

    A feature's repository writes that statement around its SQL with
    :func:`intellizap.job_repository.deferring_statement` (a claim whose inserted rows make its
    jobs) and runs it through the function returned, as one statement however many jobs: the rows
    never travel to Python and back. The jobs exist exactly when the transaction commits: a row
    claimed and its job are never one without the other (no orphan to sweep up, no job for a
    rolled-back claim), and the defer uses the session's connection, not the queue's small pool
    (shared with the running jobs). Workers are woken as by any defer (procrastinate's insert
    trigger notifies at commit). A job whose ``queueing_lock`` is already waiting makes the
    statement, and so the whole transaction, fail (``AlreadyEnqueued``): give each job its own
    lock, or defer it alone. ``tasks`` is where ``task`` is defined: a connected queue, or
    :data:`blueprint` itself.

    Each job gets an event row, whose foreign-key check looks the job up. A connection caches
    that check's plan while the queue is small (every ordinary tick defers a few jobs): a scan of
    the job table, which a burst then ran once per job it inserted — 10,000 jobs took 5.7 s
    instead of 0.7 s. A statement cannot know beforehand how many rows it will queue, so every
    defer has its connection forget its cached plans first; they are made again for the tables
    as they are now (the connection's other statements too, at their next use).
    """
    definition = tasks.tasks.get(task)  # a connected queue, or the definitions alone (tests)
    if definition is None:
        raise procrastinate.exceptions.TaskNotFound(f"no task named {task} is defined")
    queue, name = definition.queue, definition.name

    async def defer(
        session: AsyncSession, statement: TextClause, params: Mapping[str, Any]
    ) -> job_repository.Rows:
        try:
            return await job_repository.run_deferring(
                session, statement, params, queue=queue, task=name
            )
        except sqlalchemy.exc.IntegrityError as exc:
            if not job_repository.is_queueing_lock_conflict(exc):
                raise
            raise procrastinate.exceptions.AlreadyEnqueued(
                f"a {task} job with one of these queueing locks is already waiting"
            ) from exc

    return defer


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to queue with :func:`defer_in_transaction`."""

    args: dict[str, Any]
    lock: str | None = None
    queueing_lock: str | None = None
    priority: int = 0
    scheduled_at: datetime | None = None


async def defer_in_transaction(
    session: AsyncSession, tasks: procrastinate.Blueprint, task: str, specs: Sequence[JobSpec]
) -> list[int]:
    """Queue jobs of ``task`` listed in Python (for rows the caller has already read: one job,
    or rows it logs one by one) in ``session``'s transaction, in one statement however many;
    their ids. Through :func:`deferrer`, whose terms it has (commits with the transaction,
    ``AlreadyEnqueued``)."""
    if not specs:
        return []
    statement, params = job_repository.listed_jobs(
        priorities=[spec.priority for spec in specs],
        locks=[spec.lock for spec in specs],
        queueing_locks=[spec.queueing_lock for spec in specs],
        args=[orjson.dumps(spec.args).decode() for spec in specs],
        scheduled_at=[spec.scheduled_at for spec in specs],
    )
    rows = await deferrer(tasks, task)(session, statement, params)
    return [int(row[0]) for row in rows]


#: A defer this big changes the queue's size enough to make its planner statistics misleading.
BULK_DEFER = 100


async def refresh_queue_statistics(database: Database, deferred: int) -> None:
    """After a bulk defer (``deferred`` jobs, at least :data:`BULK_DEFER`: a 09:00 burst)
    committed: analyze the job table at once. Smaller defers do nothing.

    Workers fetch jobs through a plan PostgreSQL cached while the queue was small; after
    thousands of jobs arrive at once that plan scans the queue once per waiting job (a second a
    fetch with 2,000 waiting: a worker took one job per second until autovacuum analyzed the
    table a minute later, see bench/burst.py). ``ANALYZE`` updates the statistics and so
    invalidates those plans everywhere; it samples the table (every column but the arguments)
    and takes under a tenth of a second after 10,000 jobs.
    """
    if deferred < BULK_DEFER:
        return
    try:
        async with database.session() as session:
            await job_repository.analyze_jobs_table(session)
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
