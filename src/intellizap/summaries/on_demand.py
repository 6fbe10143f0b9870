"""Summaries asked for by people: ``/resumo`` typed in the group, or the frontend API.

At most one per group every ``SUMMARY_ON_DEMAND_MINUTES``, with any number of API replicas and
webhooks arriving at once: the check and the claim run under a per-group lock, and the claim
commits together with its job.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import procrastinate
from sqlalchemy import text

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.settings import Settings
from intellizap.summaries.scheduled import SUMMARIZE_TASK, summary_job

COMMAND = "/resumo"

#: Someone asked and is waiting: an on-demand summary is still worth making this long after the
#: request (a throttled provider), no longer; the day's scheduled summary covers the period anyway.
ON_DEMAND_DEADLINE = timedelta(hours=1)

_LOCK_GROUP = text("SELECT pg_advisory_xact_lock(hashtextextended(CAST(:group_id AS text), 7))")
_CLAIM_ON_DEMAND = text(
    """
    INSERT INTO resumos (grupo_id, usuario_id, status, origem)
    SELECT :group_id, :tenant_id, 'pendente', 'sob_demanda'
    WHERE NOT EXISTS (
        SELECT 1 FROM resumos
        WHERE grupo_id = :group_id AND origem = 'sob_demanda'
          AND created_at > now() - make_interval(secs => :window)
    )
    RETURNING id
    """
)


async def request_on_demand(
    database: Database,
    queue: procrastinate.App,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
) -> uuid.UUID | None:
    """Queue a summary since the last one, unless one was asked for in the last
    ``SUMMARY_ON_DEMAND_MINUTES`` (then None). The claim and its job commit together."""
    async with database.session() as session:
        # The lock first, in a statement of its own: the check below then reads a snapshot taken
        # after the lock was granted, which includes the claim of whoever held it before. (In one
        # statement with the check, the snapshot predates the lock and concurrent requests all
        # saw "no recent summary".)
        await session.execute(_LOCK_GROUP, {"group_id": group_id})
        summary_id: uuid.UUID | None = (
            await session.execute(
                _CLAIM_ON_DEMAND,
                {
                    "group_id": group_id,
                    "tenant_id": tenant_id,
                    "window": settings.summary_on_demand_minutes * 60,
                },
            )
        ).scalar_one_or_none()
        if summary_id is not None:
            deadline = datetime.now(UTC) + ON_DEMAND_DEADLINE
            await jobs.defer_in_transaction(
                session, queue, SUMMARIZE_TASK, [summary_job(summary_id, group_id, deadline)]
            )
    return summary_id


_LAST_ON_DEMAND = text(
    "SELECT max(created_at) FROM resumos WHERE grupo_id = :group_id AND origem = 'sob_demanda'"
)


async def on_demand_available_at(
    database: Database, settings: Settings, group_id: uuid.UUID
) -> datetime:
    """When the group may next be summarised on demand (now, or in the past, when it may)."""
    async with database.session() as session:
        last: datetime | None = (
            await session.execute(_LAST_ON_DEMAND, {"group_id": group_id})
        ).scalar_one()
    if last is None:
        return datetime.now(UTC)
    return last + timedelta(minutes=settings.summary_on_demand_minutes)
