"""The operator's hands on the job queue: list jobs, run failed ones again, cancel waiting ones.

procrastinate keeps each job in ``procrastinate_jobs`` (``todo`` → ``doing`` → ``succeeded``,
deleted at once, or ``failed``/``cancelled``/``aborted``, kept). Retrying and cancelling go
through procrastinate's own SQL functions where it has them, so its event log stays complete.
Job arguments may hold chat content (``send_text``'s ``text``): only ids are ever shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy.exc

from intellizap import job_repository as repository
from intellizap.db.engine import Database
from intellizap.observability.job_logs import describe_job_arguments

STATUSES = ("todo", "doing", "failed", "cancelled", "aborted", "succeeded")
RETRYABLE = ("failed", "cancelled", "aborted")


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    queue: str
    task: str
    status: str
    attempts: int
    scheduled_at: datetime | None
    lock: str | None
    arguments: str
    """Ids only (``describe_job_arguments``): never a message text."""
    last_event: str | None
    last_event_at: datetime | None


async def list_jobs(
    database: Database,
    *,
    statuses: Sequence[str],
    task: str | None = None,
    queue: str | None = None,
    limit: int = 50,
) -> list[JobRow]:
    """The newest jobs in ``statuses`` (optionally of one task or queue)."""
    async with database.session() as session:
        rows = await repository.newest_jobs(
            session, statuses=statuses, task=task, queue=queue, limit=limit
        )
    return [
        JobRow(
            id=row[0],
            queue=row[1],
            task=row[2],
            status=row[3],
            attempts=row[4],
            scheduled_at=row[5],
            lock=row[6],
            arguments=describe_job_arguments(row[7]),
            last_event=row[8],
            last_event_at=row[9],
        )
        for row in rows
    ]


RetryOutcome = Literal["queued", "not_found", "not_retryable", "duplicate"]
CancelOutcome = Literal["cancelled", "abort_requested", "not_found", "not_cancellable"]


@dataclass(frozen=True, slots=True)
class Outcome:
    job_id: int
    result: str
    status: str | None
    """The job's status before the operation (None when there is no such job)."""


async def retry_job(database: Database, job_id: int, *, reset_attempts: bool = False) -> Outcome:
    """Queue a failed, cancelled or aborted job to run again now.

    ``reset_attempts`` gives it its whole retry budget again (after fixing what made it fail);
    without it, it gets one more attempt. A job whose queueing lock is held by a waiting copy
    is left alone (``duplicate``): that copy will do the work.
    """
    status: str | None = None
    try:
        async with database.session() as session:
            status = await repository.lock_job_status(session, job_id)
            if status is None:
                return Outcome(job_id, "not_found", None)
            if status not in RETRYABLE:
                return Outcome(job_id, "not_retryable", status)
            if status == "failed":
                await repository.retry_failed_job(session, job_id)
            else:
                await repository.requeue_stopped_job(session, job_id)
            if reset_attempts:
                await repository.reset_attempts(session, job_id)
    except sqlalchemy.exc.IntegrityError:
        return Outcome(job_id, "duplicate", status)
    return Outcome(job_id, "queued", status)


async def cancel_job(database: Database, job_id: int, *, abort: bool = False) -> Outcome:
    """Cancel a waiting job; with ``abort``, also ask a running one to stop (tasks stop at
    their next await; their side effects so far stay)."""
    async with database.session() as session:
        status = await repository.lock_job_status(session, job_id)
        if status is None:
            return Outcome(job_id, "not_found", None)
        if status not in ("todo", "doing") or (status == "doing" and not abort):
            return Outcome(job_id, "not_cancellable", status)
        await repository.cancel_job(session, job_id, abort=abort)
    return Outcome(job_id, "cancelled" if status == "todo" else "abort_requested", status)


async def matching_jobs(
    database: Database,
    *,
    statuses: Sequence[str],
    task: str | None,
    queue: str | None,
    limit: int,
) -> list[int]:
    """Ids of the jobs a bulk ``retry``/``cancel`` applies to, oldest first."""
    async with database.session() as session:
        return await repository.job_ids(
            session, statuses=statuses, task=task, queue=queue, limit=limit
        )


async def active_counts(database: Database) -> list[tuple[str, str, int, int]]:
    """(queue, status, jobs, of which scheduled for later) for waiting and running jobs. Only
    these statuses are counted exactly: their partial indexes make it cheap at any table size."""
    async with database.session() as session:
        return await repository.active_job_counts(session)
