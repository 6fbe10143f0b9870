"""The job queue's queries: procrastinate's tables and SQL functions, for the defers made in a
transaction (:func:`intellizap.jobs.deferrer`, :func:`intellizap.jobs.defer_in_transaction`),
which features build their own statements around (:func:`deferring_statement`), and the
operator's commands (:mod:`intellizap.job_admin`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy.exc
from sqlalchemy import Row, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

#: What a statement built with :func:`deferring_statement` returns: rows of any columns.
Rows = Sequence[Row[*tuple[Any, ...]]]

#: Runs a statement of :func:`deferring_statement` in a session's transaction with the
#: statement's own parameters, its jobs of one task; returns its rows
#: (:func:`intellizap.jobs.deferrer` makes one per task).
Deferrer = Callable[[AsyncSession, TextClause, Mapping[str, Any]], Awaitable[Rows]]

#: The unique index that keeps one waiting job per queueing lock.
_QUEUEING_LOCK_INDEX = "procrastinate_jobs_queueing_lock_idx_v1"


def deferring_statement(ctes: str, *, jobs: str, result: str | None = None) -> TextClause:
    """A statement made of the caller's common table expressions ``ctes`` (the text after
    ``WITH``; data-modifying ones included) that also defers one job per row of ``jobs``, one of
    them, and returns the rows of ``result``, another (``SELECT *``; without it, the new jobs'
    ids). The rows never leave the database: a claim and its jobs cost one statement.

    ``jobs`` has the columns ``args`` (jsonb), ``lock``, ``queueing_lock`` (text), ``priority``
    (integer) and ``scheduled_at`` (timestamptz); the jobs are of the task in the parameters
    ``:job_queue`` and ``:job_task`` (:func:`run_deferring` binds them). procrastinate's own
    function inserts them (the one its Python API calls), in one call however many. Like any
    ``SELECT`` in a ``WITH``, the defer runs only if the statement reads it: once, as the first
    row of ``result`` is read. So each job must come from a row of ``result`` (no row, no job).
    """
    returned = (
        "SELECT unnest(d.ids) AS id FROM deferred_jobs AS d"
        if result is None
        else f"SELECT r.* FROM {result} AS r CROSS JOIN deferred_jobs"  # noqa: S608 - constant SQL
    )
    return text(
        f"""
        WITH {ctes},
        deferred_jobs AS (
            SELECT procrastinate_defer_jobs_v1(ARRAY(
                SELECT ROW(:job_queue, :job_task, j.priority, j.lock, j.queueing_lock, j.args,
                           j.scheduled_at)::procrastinate_job_to_defer_v1
                FROM {jobs} AS j
            )) AS ids
        )
        {returned}
        """  # noqa: S608 - the f-string only inserts the caller's constant SQL
    )


# Jobs listed by the caller, as arrays: thousands of jobs cost one statement and no Python
# object per job. In the order listed (the ids too).
_DEFER_LISTED = deferring_statement(
    """
    listed AS (
        SELECT j.priority, j.lock, j.queueing_lock, CAST(j.args AS jsonb) AS args, j.scheduled_at
        FROM unnest(CAST(:priorities AS integer[]), CAST(:locks AS text[]),
                    CAST(:queueing_locks AS text[]), CAST(:args AS text[]),
                    CAST(:scheduled_at AS timestamptz[]))
             WITH ORDINALITY AS j (priority, lock, queueing_lock, args, scheduled_at, n)
        ORDER BY j.n
    )
    """,
    jobs="listed",
)


def listed_jobs(
    *,
    priorities: list[int],
    locks: list[str | None],
    queueing_locks: list[str | None],
    args: list[str],
    scheduled_at: list[datetime | None],
) -> tuple[TextClause, dict[str, Any]]:
    """The statement deferring one job per element of the (equally long) lists, and its
    parameters (``args``: JSON texts), for :func:`run_deferring`; its rows are the jobs' ids."""
    params = {
        "priorities": priorities,
        "locks": locks,
        "queueing_locks": queueing_locks,
        "args": args,
        "scheduled_at": scheduled_at,
    }
    return _DEFER_LISTED, params


def no_job_for(*, waiting: str, running: str) -> str:
    """A condition for a feature's statement: no job waits with the queueing lock ``waiting``
    and none runs with the lock ``running`` (both SQL expressions over the caller's rows). Both
    lookups use procrastinate's partial unique indexes."""
    return f"""
        NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                    WHERE j.status = 'todo' AND j.queueing_lock = {waiting})
        AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                        WHERE j.status = 'doing' AND j.lock = {running})
    """  # noqa: S608 - the f-string only inserts the caller's constant SQL


_DISCARD_PLANS = text("DISCARD PLANS")


async def run_deferring(
    session: AsyncSession,
    statement: TextClause,
    params: Mapping[str, Any],
    *,
    queue: str,
    task: str,
) -> Rows:
    """Execute a statement of :func:`deferring_statement` in ``session``'s transaction, its
    jobs of ``task`` on ``queue``, its connection's cached plans forgotten first: made again,
    for the tables as they are now (see :func:`intellizap.jobs.deferrer`)."""
    await session.execute(_DISCARD_PLANS)
    result = await session.execute(statement, {**params, "job_queue": queue, "job_task": task})
    return result.all()


def is_queueing_lock_conflict(error: sqlalchemy.exc.IntegrityError) -> bool:
    """Whether ``error`` is a job refused because one with its queueing lock is waiting."""
    diagnostic = getattr(error.orig, "diag", None)
    return getattr(diagnostic, "constraint_name", None) == _QUEUEING_LOCK_INDEX


# Every column but the jobs' arguments: the queue's statements filter and sort on the others, and
# statistics of the arguments (jsonb, half of the time ANALYZE takes) plan nothing.
_ANALYZE_QUEUE = text(
    "ANALYZE procrastinate_jobs (id, queue_name, task_name, priority, lock, queueing_lock, status,"
    " scheduled_at, attempts, abort_requested, worker_id)"
)


async def analyze_jobs_table(session: AsyncSession) -> None:
    await session.execute(_ANALYZE_QUEUE)


# -- the operator's commands ---------------------------------------------------------------------

_LIST = text(
    """
    SELECT j.id, j.queue_name, j.task_name, CAST(j.status AS text), j.attempts, j.scheduled_at,
           j.lock, j.args, e.type, e.at
    FROM procrastinate_jobs j
    LEFT JOIN LATERAL (
        SELECT CAST(type AS text) AS type, at FROM procrastinate_events
        WHERE job_id = j.id ORDER BY at DESC, id DESC LIMIT 1
    ) AS e ON true
    WHERE CAST(j.status AS text) IN :statuses
      AND (CAST(:task AS text) IS NULL OR j.task_name = :task)
      AND (CAST(:queue AS text) IS NULL OR j.queue_name = :queue)
    ORDER BY j.id DESC
    LIMIT :limit
    """
).bindparams(bindparam("statuses", expanding=True))


async def newest_jobs(
    session: AsyncSession,
    *,
    statuses: Sequence[str],
    task: str | None,
    queue: str | None,
    limit: int,
) -> Sequence[Any]:
    """(id, queue, task, status, attempts, scheduled_at, lock, args, last event, its time) of
    the newest jobs in ``statuses``, optionally of one task or queue."""
    return (
        await session.execute(
            _LIST, {"statuses": list(statuses), "task": task, "queue": queue, "limit": limit}
        )
    ).all()


_STATUS = text("SELECT CAST(status AS text) FROM procrastinate_jobs WHERE id = :id FOR UPDATE")
_RETRY_FAILED = text("SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)")
_RETRY_OTHER = text(
    "UPDATE procrastinate_jobs SET status = 'todo', scheduled_at = NULL, abort_requested = false"
    " WHERE id = :id AND status IN ('cancelled', 'aborted')"
)
_RESET_ATTEMPTS = text("UPDATE procrastinate_jobs SET attempts = 0 WHERE id = :id")
_CANCEL = text("SELECT procrastinate_cancel_job_v1(:id, :abort, false)")


async def lock_job_status(session: AsyncSession, job_id: int) -> str | None:
    """The job's status, its row locked until the transaction ends (None: no such job)."""
    status: str | None = (await session.execute(_STATUS, {"id": job_id})).scalar_one_or_none()
    return status


async def retry_failed_job(session: AsyncSession, job_id: int) -> None:
    """A failed job runs again now (procrastinate's own function: its event log stays whole)."""
    await session.execute(_RETRY_FAILED, {"id": job_id})


async def requeue_stopped_job(session: AsyncSession, job_id: int) -> None:
    """A cancelled or aborted job waits again, due now."""
    await session.execute(_RETRY_OTHER, {"id": job_id})


async def reset_attempts(session: AsyncSession, job_id: int) -> None:
    await session.execute(_RESET_ATTEMPTS, {"id": job_id})


async def cancel_job(session: AsyncSession, job_id: int, *, abort: bool) -> None:
    await session.execute(_CANCEL, {"id": job_id, "abort": abort})


_MATCHING = text(
    """
    SELECT id FROM procrastinate_jobs
    WHERE CAST(status AS text) IN :statuses
      AND (CAST(:task AS text) IS NULL OR task_name = :task)
      AND (CAST(:queue AS text) IS NULL OR queue_name = :queue)
    ORDER BY id
    LIMIT :limit
    """
).bindparams(bindparam("statuses", expanding=True))


async def job_ids(
    session: AsyncSession,
    *,
    statuses: Sequence[str],
    task: str | None,
    queue: str | None,
    limit: int,
) -> list[int]:
    """Ids of the jobs in ``statuses`` (optionally of one task or queue), oldest first."""
    rows = await session.execute(
        _MATCHING, {"statuses": list(statuses), "task": task, "queue": queue, "limit": limit}
    )
    return [int(row[0]) for row in rows]


_COUNTS = text(
    """
    SELECT queue_name, CAST(status AS text), count(*),
           count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now())
    FROM procrastinate_jobs WHERE status IN ('todo', 'doing')
    GROUP BY 1, 2 ORDER BY 1, 2
    """
)


async def active_job_counts(session: AsyncSession) -> list[tuple[str, str, int, int]]:
    """(queue, status, jobs, of which scheduled for later) for waiting and running jobs."""
    rows = (await session.execute(_COUNTS)).all()
    return [(row[0], row[1], int(row[2]), int(row[3])) for row in rows]
