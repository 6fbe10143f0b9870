"""Summary jobs (daily, weekly recap, owner digest): open the context, call the service, say
which failures are final.

A summary is retried until its deadline (``deadline``, set when it is queued: its catch-up
window for a scheduled one, see ``summaries.scheduled``), not for a number of attempts: a
throttled provider makes it later, never lost. What the tenant reads in ``resumos.erro`` when it
is given up says why, and whose key it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import procrastinate

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.llm import Llm, LlmError, tenant_reason
from intellizap.settings import Settings
from intellizap.summaries.digest import (
    DIGEST_DELIVERED_TASK,
    fail_digest,
    record_digest_delivery,
    write_digest,
)
from intellizap.summaries.recap import write_recap
from intellizap.summaries.scheduled import DIGEST_TASK, RECAP_TASK, SUMMARIZE_TASK
from intellizap.summaries.service import fail, summarize
from intellizap.summaries.tokens import load_encoding
from intellizap.tenants.quota import QuotaBusy, QuotaRefused

#: Jobs without a deadline (queued by an older version) still stop after ``max_attempts``.
RETRY = jobs.Backoff(max_attempts=6, deadline_arg="deadline")


def _llm_reason(exc: BaseException) -> str:
    assert isinstance(exc, LlmError)
    reason = tenant_reason(exc)
    return f"{reason}; resumo não gerado dentro do prazo" if exc.transient else reason


#: What the tenant is told (``resumos.erro``) when we give up; the first matching type wins.
REASONS: dict[type[BaseException], jobs.Reason] = {
    QuotaRefused: str,
    QuotaBusy: "cota mensal de tokens ocupada por outros resumos em andamento até o fim do prazo",
    LlmError: _llm_reason,
}

# The token encoding takes seconds to load: a worker loads it before its first job, so no
# summary stalls the worker's event loop (and every job running on it) while it loads.
jobs.prepare_at_start(load_encoding)


Writer = Callable[[Database, Llm, Settings, procrastinate.App, uuid.UUID], Awaitable[str]]
Recorder = Callable[[Database, uuid.UUID, str], Awaitable[None]]


async def _write(
    job_context: procrastinate.JobContext,
    row_id: str,
    *,
    what: str,
    write: Writer,
    record: Recorder,
) -> str:
    """Run ``write`` for the row ``row_id``; when a failure is final, ``record`` why (the
    tenant reads it) before the job fails. ``what`` names the text in the default reason."""
    context = jobs.context_of(job_context)
    row = uuid.UUID(row_id)
    async with jobs.final_failure(
        job_context,
        RETRY,
        reasons=REASONS,
        default=lambda exc: f"falha ao gerar {what}: {type(exc).__name__}",
        record=lambda reason: record(context.database, row, reason),
    ):
        return await write(context.database, context.llm, context.settings, job_context.app, row)


def _now(write: Callable[..., Awaitable[str]]) -> Writer:
    """``write`` called with the time the job runs."""
    return lambda *args: write(*args, now=datetime.now(UTC))


@jobs.blueprint.task(name=SUMMARIZE_TASK, queue="summaries", retry=RETRY, pass_context=True)
async def summarize_group(
    job_context: procrastinate.JobContext, *, summary_id: str, deadline: str | None = None
) -> str:
    return await _write(
        job_context, summary_id, what="o resumo", write=_now(summarize), record=fail
    )


@jobs.blueprint.task(name=RECAP_TASK, queue="summaries", retry=RETRY, pass_context=True)
async def weekly_recap(
    job_context: procrastinate.JobContext, *, summary_id: str, deadline: str | None = None
) -> str:
    return await _write(
        job_context,
        summary_id,
        what="a retrospectiva semanal",
        write=_now(write_recap),
        record=fail,
    )


@jobs.blueprint.task(name=DIGEST_TASK, queue="summaries", retry=RETRY, pass_context=True)
async def owner_digest(
    job_context: procrastinate.JobContext, *, digest_id: str, deadline: str | None = None
) -> str:
    return await _write(
        job_context,
        digest_id,
        what="o resumo do dia",
        write=_now(write_digest),
        record=fail_digest,
    )


@jobs.blueprint.task(
    name=DIGEST_DELIVERED_TASK, queue="summaries", retry=jobs.Backoff(), pass_context=True
)
async def digest_delivered(
    job_context: procrastinate.JobContext, *, digest_id: str, sent: bool, reason: str | None
) -> bool:
    return await record_digest_delivery(
        jobs.context_of(job_context).database, uuid.UUID(digest_id), sent=sent, reason=reason
    )
