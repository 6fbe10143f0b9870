"""Transcription jobs: open the context, call the service, say which failures are final."""

from __future__ import annotations

import uuid

import procrastinate

from intellizap import jobs
from intellizap.evolution.errors import EvolutionError
from intellizap.llm import InvalidApiKey, LlmError, NoApiKey
from intellizap.transcription.audio import AudioError
from intellizap.transcription.service import TRANSCRIBE_TASK, record_failure, transcribe_message

RETRY = jobs.Backoff(max_attempts=8)

#: What the tenant is told (``mensagens.transcricao_erro``) when we give up.
REASONS: dict[type[Exception], str] = {
    InvalidApiKey: "chave OpenAI recusada pelo provedor; atualize a chave",
    NoApiKey: "nenhuma chave OpenAI configurada",
    AudioError: "arquivo de áudio ilegível",
    EvolutionError: "não foi possível baixar o áudio da Evolution API",
    LlmError: "o serviço de transcrição recusou o áudio",
}


@jobs.app.task(name=TRANSCRIBE_TASK, queue="transcription", retry=RETRY, pass_context=True)
async def transcribe_audio(job_context: procrastinate.JobContext, *, message_id: str) -> str:
    context = jobs.context_of(job_context)
    try:
        outcome = await transcribe_message(context, job_context.app, uuid.UUID(message_id))
    except Exception as exc:
        if RETRY.gives_up(exc, job_context.job):
            reason = next((text for kind, text in REASONS.items() if isinstance(exc, kind)), None)
            await record_failure(
                context.database, uuid.UUID(message_id), reason or "falha inesperada na transcrição"
            )
        raise
    return outcome.status
