"""A summary is ``enviado`` when the send ledger confirms its last part, ``erro`` when a part
failed for good: the send job runs :func:`summary_delivered` (named when the summary is queued
for sending), so ``evolution/`` never touches ``resumos``."""

from __future__ import annotations

import uuid

import procrastinate

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.evolution.send_ledger import Completion
from intellizap.observability.summaries import SUMMARIES
from intellizap.summaries import repository

SUMMARY_DELIVERED_TASK = "summary_delivered"


def on_delivery(summary_id: uuid.UUID) -> Completion:
    """What the send of summary ``summary_id`` runs once it is sent (or failed)."""
    return Completion(task=SUMMARY_DELIVERED_TASK, args={"summary_id": str(summary_id)})


async def record_delivery(
    database: Database, summary_id: uuid.UUID, *, sent: bool, reason: str | None
) -> bool:
    """Mark the summary sent, or failed with ``reason``; returns whether it changed."""
    if sent:
        return _counted("enviado", await repository.mark_sent(database, summary_id))
    return await record_failure(database, summary_id, reason or "envio falhou")


async def record_failure(database: Database, summary_id: uuid.UUID, reason: str) -> bool:
    """The summary ends ``erro`` with ``reason`` (what the tenant reads), if still pending;
    returns whether it changed."""
    return _counted("erro", await repository.mark_failed(database, summary_id, reason))


def _counted(status: str, origin: str | None) -> bool:
    """Count a summary that just reached ``status`` (``origin`` is None: it had not changed)."""
    if origin is None:
        return False
    SUMMARIES.labels(status, origin).inc()
    return True


@jobs.blueprint.task(
    name=SUMMARY_DELIVERED_TASK, queue="summaries", retry=jobs.Backoff(), pass_context=True
)
async def summary_delivered(
    job_context: procrastinate.JobContext, *, summary_id: str, sent: bool, reason: str | None
) -> bool:
    return await record_delivery(
        jobs.context_of(job_context).database, uuid.UUID(summary_id), sent=sent, reason=reason
    )
