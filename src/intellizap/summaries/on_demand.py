"""Summaries asked for by people: ``/resumo`` typed in the group, or the frontend API.

At most one per group every ``SUMMARY_ON_DEMAND_MINUTES``, with any number of API replicas and
webhooks arriving at once: the check and the claim run under a per-group lock, and the claim
commits together with its job.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import procrastinate

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.settings import Settings
from intellizap.summaries import repository
from intellizap.summaries.scheduled import SUMMARIZE_TASK, summary_job

COMMAND = "/resumo"

#: Someone asked and is waiting: an on-demand summary is still worth making this long after the
#: request (a throttled provider), no longer; the day's scheduled summary covers the period anyway.
ON_DEMAND_DEADLINE = timedelta(hours=1)


async def request_on_demand(
    database: Database,
    queue: procrastinate.Blueprint,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
) -> uuid.UUID | None:
    """Queue a summary since the last one, unless one was asked for in the last
    ``SUMMARY_ON_DEMAND_MINUTES`` (then None). The claim and its job commit together."""
    async with database.session() as session:
        summary_id = await repository.claim_on_demand(
            session,
            group_id=group_id,
            tenant_id=tenant_id,
            window_seconds=settings.summary_on_demand_minutes * 60,
        )
        if summary_id is not None:
            deadline = datetime.now(UTC) + ON_DEMAND_DEADLINE
            await jobs.defer_in_transaction(
                session, queue, SUMMARIZE_TASK, [summary_job(summary_id, group_id, deadline)]
            )
    return summary_id


async def on_demand_available_at(
    database: Database, settings: Settings, group_id: uuid.UUID
) -> datetime:
    """When the group may next be summarised on demand (now, or in the past, when it may)."""
    last = await repository.last_on_demand_at(database, group_id)
    if last is None:
        return datetime.now(UTC)
    return last + timedelta(minutes=settings.summary_on_demand_minutes)
