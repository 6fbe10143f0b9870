"""Sending text to WhatsApp, paced per instance.

WhatsApp bans numbers that send in bursts, so every send is a job holding the lock
``whatsapp-send:<tenant>``: procrastinate runs the jobs of one lock one at a time, in order, and
the job waits ``SEND_MIN_INTERVAL_SECONDS`` after its send before releasing it. Different
instances do not wait for each other. Long texts are split at paragraph boundaries, one job per
part, so a retry never sends a part twice.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import procrastinate
from sqlalchemy import text as sql

from intellizap import jobs
from intellizap.evolution.client import Quote
from intellizap.evolution.errors import EvolutionError
from intellizap.logging import get_logger
from intellizap.tenants.repository import tenant_by_id

log = get_logger(__name__)


def split_text(
    text: str, limit: int, separators: tuple[str, ...] = ("\n\n", "\n", " ")
) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at paragraph boundaries, else at
    line, else at word boundaries; only a single word longer than ``limit`` is cut hard."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    if not separators:
        return [text[start : start + limit] for start in range(0, len(text), limit)]
    separator, finer = separators[0], separators[1:]
    parts: list[str] = []
    current = ""
    for piece in text.split(separator):
        candidate = f"{current}{separator}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = ""
        if len(piece) <= limit:
            current = piece
        else:
            parts.extend(split_text(piece, limit, finer))
    if current:
        parts.append(current)
    return [part.strip() for part in parts if part.strip()]


async def queue_text(
    queue: procrastinate.App,
    *,
    tenant_id: uuid.UUID,
    number: str,
    text: str,
    max_chars: int,
    quote: Quote | None = None,
    dedupe_key: str | None = None,
    summary_id: uuid.UUID | None = None,
) -> int:
    """Defer the sends of ``text`` to ``number`` (the quote goes on the first part); returns the
    number of parts. ``dedupe_key`` makes a repeated request a no-op while it is queued. With
    ``summary_id``, the summary is marked sent after its last part (or failed, with the reason)."""
    parts = split_text(text, max_chars)
    for index, part in enumerate(parts):
        await jobs.defer(
            queue,
            "send_text",
            lock=f"whatsapp-send:{tenant_id}",
            queueing_lock=f"{dedupe_key}:{index}" if dedupe_key else None,
            args={
                "tenant_id": str(tenant_id),
                "number": number,
                "text": part,
                "quote": _quote_args(quote) if quote and index == 0 else None,
                "summary_id": str(summary_id) if summary_id else None,
                "completes_summary": index == len(parts) - 1,
            },
        )
    return len(parts)


def _quote_args(quote: Quote) -> dict[str, Any]:
    return {
        "message_id": quote.message_id,
        "chat_jid": quote.chat_jid,
        "from_me": quote.from_me,
        "participant": quote.participant,
        "message": quote.message,
    }


_RECORD_SENT = sql(
    "INSERT INTO mensagens_enviadas (id_externo, usuario_id) VALUES (:id, :tenant_id) "
    "ON CONFLICT DO NOTHING"
)
_SUMMARY_SENT = sql(
    "UPDATE resumos SET status = 'enviado', data_envio = now(), erro = NULL WHERE id = :id"
)
_SUMMARY_FAILED = sql("UPDATE resumos SET status = 'erro', erro = :reason WHERE id = :id")

SEND_RETRY = jobs.Backoff(max_attempts=8)


@jobs.app.task(name="send_text", queue="sending", retry=SEND_RETRY, pass_context=True)
async def send_text(
    job_context: procrastinate.JobContext,
    *,
    tenant_id: str,
    number: str,
    text: str,
    quote: dict[str, Any] | None = None,
    summary_id: str | None = None,
    completes_summary: bool = False,
) -> str | None:
    context = jobs.context_of(job_context)
    tenant = await tenant_by_id(context.database, uuid.UUID(tenant_id))
    try:
        message_id = await context.evolution.send_text(
            tenant.instance,
            number=number,
            text=text,
            quote=Quote(**quote) if quote else None,
            token=tenant.evolution_token,
        )
    except EvolutionError as exc:
        if summary_id and SEND_RETRY.gives_up(exc, job_context.job):
            async with context.database.session() as session:
                await session.execute(
                    _SUMMARY_FAILED, {"id": summary_id, "reason": f"envio falhou: {exc}"[:500]}
                )
        raise
    async with context.database.session() as session:
        if message_id:  # so our own messages never end up in a summary
            await session.execute(_RECORD_SENT, {"id": message_id, "tenant_id": tenant.id})
        if summary_id and completes_summary:
            await session.execute(_SUMMARY_SENT, {"id": summary_id})
    log.info("text sent", instancia=tenant.instance, usuario_id=tenant_id, chars=len(text))
    # Still holding this instance's lock: the next send of the instance waits for this pause.
    await asyncio.sleep(context.settings.send_min_interval_seconds)
    return message_id
