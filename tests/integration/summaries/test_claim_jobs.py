"""The jobs the tick's claim statements make in SQL are exactly the ones ``summary_job`` and
``digest_job`` make in Python: same arguments (the deadline written as ``isoformat()`` writes
it), locks, priority and queue, nothing scheduled for later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.summaries.claims_repository import iso_instant
from intellizap.summaries.scheduled import (
    DIGEST_TASK,
    RECAP_TASK,
    SUMMARIZE_TASK,
    claim_due_digests,
    claim_due_recaps,
    claim_due_summaries,
    digest_job,
    summary_job,
)
from intellizap.task_modules import connect_queue
from tests.conftest import make_settings
from tests.factories import create_group
from tests.integration.summaries.test_rollup_schedule import account, weekly_group
from tests.integration.summaries.test_summary_schedule import utc


@pytest.fixture
def settings(database_url: str) -> Any:
    return make_settings(database_url)


@pytest.fixture
def queue(database_url: str) -> Any:
    """The application's queue, with every task (not opened: claims defer through their own
    connection)."""
    return connect_queue(database_url)


def grace(settings: Any) -> timedelta:
    return timedelta(hours=settings.summary_catchup_hours)


async def queued(database: Database, task: str) -> list[tuple[str, jobs.JobSpec]]:
    """(queue, job) of every job of ``task`` waiting, by queueing lock."""
    async with database.session() as session:
        rows = await session.execute(
            text(
                "SELECT queue_name, args, lock, queueing_lock, priority, scheduled_at"
                " FROM procrastinate_jobs WHERE task_name = :task AND status = 'todo'"
                " ORDER BY queueing_lock"
            ),
            {"task": task},
        )
        return [(row[0], jobs.JobSpec(*row[1:])) for row in rows]


def by_lock(queue: Any, task: str, specs: list[jobs.JobSpec]) -> list[tuple[str, jobs.JobSpec]]:
    name = queue.tasks[task].queue
    return [(name, spec) for spec in sorted(specs, key=lambda spec: spec.queueing_lock or "")]


async def test_a_daily_claims_job_is_summary_jobs(
    clean_database: Database, settings: Any, queue: Any
) -> None:
    tenant = await account(clean_database, "daily")  # 20:00 in São Paulo: 23:00 UTC
    for n in range(3):
        await create_group(clean_database, tenant, f"{n}@g.us", summary_enabled=True)
    now = utc(2026, 11, 25, 23, 0)
    claims = await claim_due_summaries(clean_database, settings, now, queue=queue)
    assert len(claims) == 3
    expected = [summary_job(c.summary_id, c.group_id, c.due_at + grace(settings)) for c in claims]
    waiting = await queued(clean_database, SUMMARIZE_TASK)
    assert waiting == by_lock(queue, SUMMARIZE_TASK, expected)
    deadline = datetime.fromisoformat(waiting[0][1].args["deadline"])  # as the task reads it
    assert deadline == now + grace(settings)


async def test_a_recap_claims_job_is_summary_jobs(
    clean_database: Database, settings: Any, queue: Any
) -> None:
    tenant = await account(clean_database, "weekly")
    await weekly_group(clean_database, tenant, 1)
    claims = await claim_due_recaps(clean_database, settings, utc(2026, 11, 25, 23, 0), queue=queue)
    expected = [summary_job(c.summary_id, c.group_id, c.due_at + grace(settings)) for c in claims]
    assert len(expected) == 1
    assert await queued(clean_database, RECAP_TASK) == by_lock(queue, RECAP_TASK, expected)


async def test_a_digest_claims_job_is_digest_jobs(
    clean_database: Database, settings: Any, queue: Any
) -> None:
    await account(clean_database, "owner", owner_digest_enabled=True)
    claims = await claim_due_digests(
        clean_database, settings, utc(2026, 11, 25, 23, 30), queue=queue
    )
    expected = [digest_job(c.digest_id, c.tenant_id, c.due_at + grace(settings)) for c in claims]
    assert len(expected) == 1
    assert await queued(clean_database, DIGEST_TASK) == by_lock(queue, DIGEST_TASK, expected)


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 59, 59, 123456, tzinfo=UTC),
        datetime(2026, 11, 25, 21, 30, 0, 50, tzinfo=ZoneInfo("America/Sao_Paulo")),
        datetime(2027, 1, 1, 0, 0, 7, tzinfo=ZoneInfo("Asia/Tokyo")),
    ],
)
async def test_sql_writes_an_instant_as_isoformat_does_in_utc(
    database: Database, instant: datetime
) -> None:
    statement = text(f"SELECT {iso_instant('CAST(:instant AS timestamptz)')}")
    async with database.session() as session:
        written = (await session.execute(statement, {"instant": instant})).scalar_one()
    assert written == instant.astimezone(UTC).isoformat()
