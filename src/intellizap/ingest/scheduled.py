"""Housekeeping of ingested data: the pending-change sweep (each minute), retention and the job
queue's finished jobs (daily)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import procrastinate

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.ingest import repository
from intellizap.ingest.changes import apply_all_pending_changes
from intellizap.logging import get_logger
from intellizap.transcription import repository as transcription_repository

log = get_logger(__name__)

BATCH = 5_000
FINISHED_JOBS_KEPT_HOURS = 7 * 24


async def delete_old_messages(database: Database, *, now: datetime, retention_days: int) -> int:
    """Delete messages older than ``retention_days``, in batches; returns how many."""
    before = now - timedelta(days=retention_days)
    deleted = 0
    while True:
        # Small batches keep each transaction short on a busy table.
        async with database.session() as session:
            batch = await repository.delete_messages_before(session, before, limit=BATCH)
        deleted += batch
        if batch < BATCH:
            break
    async with database.session() as session:
        await repository.delete_stale_rows(session, before)
        await transcription_repository.delete_abandoned_audio(session, now - timedelta(days=1))
    return deleted


@jobs.blueprint.periodic(cron="* * * * *", periodic_id="pending-changes-sweep")
@jobs.blueprint.task(name="apply_pending_changes", queue="maintenance", pass_context=True)
async def sweep_pending_changes(job_context: procrastinate.JobContext, timestamp: int) -> int:
    """Edits and deletes whose message arrived in the same instant (see ``changes.py``)."""
    return await apply_all_pending_changes(jobs.context_of(job_context).database)


@jobs.blueprint.periodic(cron="40 3 * * *", periodic_id="daily-cleanup")
@jobs.blueprint.task(name="cleanup", queue="maintenance", pass_context=True)
async def cleanup(job_context: procrastinate.JobContext, timestamp: int) -> int:
    context = jobs.context_of(job_context)
    deleted = await delete_old_messages(
        context.database,
        now=datetime.fromtimestamp(timestamp, UTC),
        retention_days=context.settings.retention_days,
    )
    await job_context.app.job_manager.delete_old_jobs(
        nb_hours=FINISHED_JOBS_KEPT_HOURS, include_failed=True
    )
    log.info("cleanup done", mensagens_apagadas=deleted)
    return deleted
