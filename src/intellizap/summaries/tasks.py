"""Summary jobs: open the context, call the service, say which failures are final."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import procrastinate

from intellizap import jobs
from intellizap.llm import InvalidApiKey, LlmError, NoApiKey
from intellizap.summaries.scheduled import SUMMARIZE_TASK
from intellizap.summaries.service import SummaryRefused, fail, summarize

RETRY = jobs.Backoff(max_attempts=6)

#: What the tenant is told (``resumos.erro``) when we give up.
REASONS: dict[type[Exception], str] = {
    InvalidApiKey: "chave OpenAI do cliente recusada pelo provedor; atualize a chave",
    NoApiKey: "nenhuma chave OpenAI configurada",
    LlmError: "o provedor de IA recusou o pedido",
}


@jobs.app.task(name=SUMMARIZE_TASK, queue="summaries", retry=RETRY, pass_context=True)
async def summarize_group(job_context: procrastinate.JobContext, *, summary_id: str) -> str:
    context = jobs.context_of(job_context)
    try:
        return await summarize(
            context.database,
            context.llm,
            context.settings,
            job_context.app,
            uuid.UUID(summary_id),
            now=datetime.now(UTC),
        )
    except Exception as exc:
        if RETRY.gives_up(exc, job_context.job):
            if isinstance(exc, SummaryRefused):
                reason = str(exc)
            else:
                reason = next((text for kind, text in REASONS.items() if isinstance(exc, kind)), "")
                reason = reason or f"falha ao gerar o resumo: {type(exc).__name__}"
            await fail(context.database, uuid.UUID(summary_id), reason)
        raise
