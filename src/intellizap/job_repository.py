"""The job queue's queries: procrastinate's tables and SQL functions, for the bulk defer
(:func:`intellizap.jobs.defer_in_transaction`) and the operator's commands
(:mod:`intellizap.job_admin`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

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


async def insert_jobs(
    session: AsyncSession,
    *,
    queue: str,
    task: str,
    priorities: list[int],
    locks: list[str | None],
    queueing_locks: list[str | None],
    args: list[str],
    scheduled_at: list[datetime | None],
) -> list[int]:
    """Defer one job per element of the (equally long) lists, in one statement; their ids."""
    ids = (
        await session.execute(
            _DEFER_MANY,
            {
                "queue": queue,
                "task": task,
                "priorities": priorities,
                "locks": locks,
                "queueing_locks": queueing_locks,
                "args": args,
                "scheduled_at": scheduled_at,
            },
        )
    ).scalars()
    return list(ids)


_ANALYZE_QUEUE = text("ANALYZE procrastinate_jobs")
_DISCARD_PLANS = text("DISCARD PLANS")


async def forget_cached_plans(session: AsyncSession) -> None:
    """Have the session's connection plan its statements afresh (its prepared statements stay)."""
    await session.execute(_DISCARD_PLANS)


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
