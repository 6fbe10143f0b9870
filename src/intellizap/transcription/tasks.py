"""Transcription jobs: open the context, call the service, say which failures are final.

Retried until the job's deadline (``TRANSCRIPTION_DEADLINE`` after the voice note arrived), not
for a number of attempts, so a throttled provider delays transcripts without losing them.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref

import procrastinate

from intellizap import jobs
from intellizap.evolution.errors import EvolutionError
from intellizap.llm import LlmError, LlmRejected, tenant_reason
from intellizap.transcription.audio import AudioError
from intellizap.transcription.service import TRANSCRIBE_TASK, record_failure, transcribe_message

#: Jobs without a deadline (queued by an older version) still stop after ``max_attempts``.
RETRY = jobs.Backoff(max_attempts=8, deadline_arg="deadline")


def _llm_reason(exc: BaseException) -> str:
    assert isinstance(exc, LlmError)
    reason = tenant_reason(exc)
    return f"{reason}; áudio não transcrito dentro do prazo" if exc.transient else reason


#: What the tenant is told (``mensagens.transcricao_erro``) when we give up; first match wins.
REASONS: dict[type[BaseException], jobs.Reason] = {
    AudioError: "arquivo de áudio ilegível",
    EvolutionError: "não foi possível baixar o áudio da Evolution API",
    LlmRejected: "o serviço de transcrição recusou o áudio",
    LlmError: _llm_reason,
}

# Each transcription holds a voice note in memory and may run ffmpeg: a worker runs at most
# TRANSCRIPTION_CONCURRENCY of them at once, whatever its WORKER_CONCURRENCY (sized for jobs
# that mostly wait). One semaphore per event loop (each worker runs its own).
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _transcription_slots(size: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(size)
    return slots


@jobs.blueprint.task(name=TRANSCRIBE_TASK, queue="transcription", retry=RETRY, pass_context=True)
async def transcribe_audio(
    job_context: procrastinate.JobContext, *, message_id: str, deadline: str | None = None
) -> str:
    context = jobs.context_of(job_context)
    message = uuid.UUID(message_id)
    async with (
        jobs.final_failure(
            job_context,
            RETRY,
            reasons=REASONS,
            default="falha inesperada na transcrição",
            record=lambda reason: record_failure(context.database, message, reason),
        ),
        _transcription_slots(context.settings.transcription_concurrency),
    ):
        outcome = await transcribe_message(context, job_context.app, message)
    return outcome.status
