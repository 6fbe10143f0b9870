"""Jobs queued in a session's transaction (``jobs.deferrer``, ``jobs.defer_in_transaction``): they
commit with it, a waiting queueing lock fails it as ``AlreadyEnqueued``, and a statement's own
rows make its jobs without leaving the database."""

from __future__ import annotations

import procrastinate
import pytest
import sqlalchemy.exc
from sqlalchemy import text

from intellizap import job_repository, jobs
from intellizap.db.engine import Database
from tests.factories import count

TASK = "recover_stalled_jobs"  # any task: no worker runs here, the jobs only wait

# Three jobs made by the statement from its own rows, and those rows returned.
NUMBERED = job_repository.deferring_statement(
    """
    numbered AS (SELECT n FROM generate_series(1, 3) AS n),
    numbered_jobs AS (
        SELECT jsonb_build_object('n', n) AS args, 'lock-' || n AS lock,
               'queued-' || n AS queueing_lock, n AS priority,
               CAST(NULL AS timestamptz) AS scheduled_at
        FROM numbered
    )
    """,
    jobs="numbered_jobs",
    result="numbered",
)


async def waiting(database: Database) -> list[tuple[str, str, int, str]]:
    async with database.session() as session:
        rows = await session.execute(
            text(
                "SELECT queueing_lock, lock, priority, CAST(args AS text) FROM procrastinate_jobs"
                " WHERE task_name = :task AND status = 'todo' ORDER BY id"
            ),
            {"task": TASK},
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]


async def test_a_statements_rows_make_its_jobs_and_are_returned(clean_database: Database) -> None:
    async with clean_database.session() as session:
        rows = await jobs.deferrer(jobs.blueprint, TASK)(session, NUMBERED, {})
    assert [row[0] for row in rows] == [1, 2, 3]
    assert await waiting(clean_database) == [
        (f"queued-{n}", f"lock-{n}", n, f'{{"n": {n}}}') for n in (1, 2, 3)
    ]


async def test_a_waiting_queueing_lock_fails_the_whole_transaction(
    clean_database: Database,
) -> None:
    first = jobs.JobSpec(args={"n": 1}, queueing_lock="queued-1")
    async with clean_database.session() as session:
        [job_id] = await jobs.defer_in_transaction(session, jobs.blueprint, TASK, [first])
    assert job_id > 0

    async def another_job_then_a_waiting_lock() -> None:
        async with clean_database.session() as session:
            other = jobs.JobSpec(args={"n": 0}, queueing_lock="other")
            await jobs.defer_in_transaction(session, jobs.blueprint, TASK, [other])
            await jobs.deferrer(jobs.blueprint, TASK)(session, NUMBERED, {})  # queued-1 again

    with pytest.raises(procrastinate.exceptions.AlreadyEnqueued):
        await another_job_then_a_waiting_lock()
    assert [lock for lock, *_ in await waiting(clean_database)] == ["queued-1"]


async def test_another_integrity_error_is_not_taken_for_a_waiting_job(
    clean_database: Database,
) -> None:
    """Before, any integrity error of the defer became ``AlreadyEnqueued``: now the statement
    also carries the caller's own inserts (a claim), whose errors are theirs."""
    no_args = job_repository.deferring_statement(
        """
        bad AS (SELECT CAST(NULL AS jsonb) AS args, CAST(NULL AS text) AS lock,
                       CAST(NULL AS text) AS queueing_lock, 0 AS priority,
                       CAST(NULL AS timestamptz) AS scheduled_at)
        """,
        jobs="bad",
    )

    async def defer_without_args() -> None:
        async with clean_database.session() as session:
            await jobs.deferrer(jobs.blueprint, TASK)(session, no_args, {})

    with pytest.raises(sqlalchemy.exc.IntegrityError):  # not AlreadyEnqueued
        await defer_without_args()
    assert await count(clean_database, "SELECT count(*) FROM procrastinate_jobs") == 0


def test_an_unknown_task_is_refused_before_any_statement() -> None:
    with pytest.raises(procrastinate.exceptions.TaskNotFound):
        jobs.deferrer(jobs.blueprint, "no_such_task")
