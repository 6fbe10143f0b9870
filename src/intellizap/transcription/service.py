"""Transcribing one voice note: download (or take the webhook's copy), Whisper, store, reply.

Idempotent: a message that already has a text (or a recorded failure, or was deleted) is left
alone, so a duplicate job or a job re-run after a crash does no second transcription. The
``audios_pendentes`` row outlives the transcript until the reply is queued, so a run that stopped
in between is finished by the next one: the reply is sent from the stored transcript, and the send
ledger (``evolution/sending.py``) makes sure a reply queued twice goes out once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import procrastinate

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.evolution.client import Quote
from intellizap.evolution.payloads import announced_duration
from intellizap.evolution.sending import queue_text
from intellizap.jobs import WorkerContext
from intellizap.llm import KeyOwner, choose_key
from intellizap.logging import get_logger
from intellizap.observability.transcription import TRANSCRIBED_SECONDS
from intellizap.transcription import repository
from intellizap.transcription.audio import AudioError, duration_seconds, uploads_for
from intellizap.transcription.repository import VoiceNote

log = get_logger(__name__)

TRANSCRIBE_TASK = "transcribe_audio"
#: A voice note is retried (throttled or failing provider) until this long after it arrived.
TRANSCRIPTION_DEADLINE = timedelta(hours=3)


# -- requesting (webhook side) -----------------------------------------------------------------------


async def request_transcription(
    database: Database,
    queue: procrastinate.App,
    *,
    message_id: uuid.UUID,
    media: dict[str, object],
    media_base64: str | None,
) -> None:
    """Queue the transcription of a stored audio message (at most one waiting job per message)."""
    import orjson

    async with database.session() as session:
        await repository.save_pending_audio(
            session, message_id, orjson.dumps(media).decode(), media_base64
        )
    await jobs.defer(
        queue,
        TRANSCRIBE_TASK,
        # At most one waiting job per message, and never two running at once: a job queued by a
        # duplicate webhook while the first runs waits for it, then finds the transcript there.
        queueing_lock=f"transcribe:{message_id}",
        lock=f"transcribe:{message_id}",
        args={
            "message_id": str(message_id),
            "deadline": (datetime.now(UTC) + TRANSCRIPTION_DEADLINE).isoformat(),
        },
    )


async def untranscribed_message(
    database: Database, group_id: uuid.UUID, external_id: str
) -> uuid.UUID | None:
    """For a duplicate webhook: the stored audio still waiting for its transcript, if any (the
    first delivery may have failed between storing the message and queueing the job)."""
    async with database.session() as session:
        return await repository.untranscribed_audio(session, group_id, external_id)


# -- transcribing (worker side) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    """transcribed, skipped, too_long, empty"""
    transcript: str | None = None


def _decode(data: str) -> bytes:
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise AudioError("the audio's base64 is corrupt") from exc


async def transcribe_message(
    context: WorkerContext, queue: procrastinate.App, message_id: uuid.UUID
) -> Outcome:
    settings = context.settings
    database = context.database
    async with database.session() as session:
        row = await repository.voice_note(session, message_id)
    if row is None:
        return Outcome("skipped")  # the message was deleted by retention or its group removed
    media: dict[str, Any] | None = row.media
    if row.text is not None and media is not None and not row.deleted_at:
        # Transcribed by an earlier run that stopped before queueing the reply (the pending
        # row is removed only once the reply is queued): reply now, without paying twice.
        await _reply(context, queue, row, _quote_of(media, row.group_jid), row.text)
        return Outcome("transcribed", row.text)
    if row.text is not None or row.deleted_at or row.transcription_error:
        await drop_audio(database, message_id)
        return Outcome("skipped")
    if not (row.group_on and row.tenant_on) or media is None:
        await drop_audio(database, message_id)
        return Outcome("skipped")

    quote = _quote_of(media, row.group_jid)
    announced = _announced_seconds(media)
    limit = settings.transcription_max_seconds
    if announced is not None and announced > limit:
        return await _too_long(context, queue, row, quote, announced)

    key = choose_key(row.openai_key, settings.openai_api_key)
    with tempfile.TemporaryDirectory(prefix="intellizap-audio-") as workdir:
        source = Path(workdir) / "source.ogg"
        if row.data_base64:
            audio = _decode(row.data_base64)
        else:
            downloaded = await context.evolution.get_media_base64(
                row.instance,
                key=media["key"],
                message=media["message"],
                token=row.evolution_token,
            )
            audio = _decode(downloaded.data_base64)
        await asyncio.to_thread(source.write_bytes, audio)
        del audio
        duration = await duration_seconds(source)
        if duration > limit:
            return await _too_long(context, queue, row, quote, duration)
        uploads = await uploads_for(
            source,
            Path(workdir),
            duration=duration,
            max_bytes=settings.transcription_max_upload_bytes,
            chunk_seconds=settings.transcription_chunk_seconds,
        )
        texts = []
        for index, upload in enumerate(uploads):
            data = await asyncio.to_thread(upload.read_bytes)
            texts.append(
                await context.llm.transcribe(
                    key,
                    audio=data,
                    filename=f"{row.external_id}-{index}.ogg",
                    model=settings.transcription_model,
                )
            )
    transcript = " ".join(part for part in texts if part).strip()

    async with database.session() as session:
        await repository.record_transcription_usage(
            session,
            tenant_id=row.tenant_id,
            message_id=message_id,
            model=settings.transcription_model,
            seconds=round(duration, 2),
            key_owner=key.owner.value,
        )
        stored = None
        if transcript:
            stored = await repository.store_transcript(session, message_id, transcript)
        else:
            await repository.record_transcription_failure(
                session, message_id, "nenhuma fala reconhecida no áudio"
            )
        # The audio bytes go now; the pending row itself stays until the reply is queued.
        await repository.forget_audio_bytes(session, message_id)
    TRANSCRIBED_SECONDS.labels(key_owner=key.owner.value).inc(max(duration, 0.0))
    if stored is not None:
        await _reply(context, queue, row, quote, transcript)
    else:
        await drop_audio(database, message_id)
    if not transcript:
        return Outcome("empty")
    log.info(
        "voice note transcribed",
        usuario_id=str(row.tenant_id),
        instancia=row.instance,
        seconds=round(duration, 1),
        chave=key.owner.value,
        own_key=key.owner is KeyOwner.OWN,
    )
    return Outcome("transcribed", transcript)


async def _too_long(
    context: WorkerContext, queue: procrastinate.App, row: VoiceNote, quote: Quote, seconds: float
) -> Outcome:
    limit_minutes = context.settings.transcription_max_seconds / 60
    reason = f"áudio de {seconds / 60:.1f} min acima do limite de {limit_minutes:g} min"
    # Reply first, then record: a crash in between queues the reply again, which the send
    # ledger recognises by its key (it goes out once), rather than losing it.
    await queue_text(
        queue,
        context.database,
        tenant_id=row.tenant_id,
        number=row.group_jid,
        text=(
            f"🎙️ Este áudio tem {seconds / 60:.0f} min e não foi transcrito: "
            f"o limite é de {limit_minutes:g} min."
        ),
        max_chars=context.settings.send_max_chars,
        quote=quote,
        key=f"transcript:{row.id}",
    )
    await record_failure(context.database, row.id, reason)
    return Outcome("too_long")


async def _reply(
    context: WorkerContext, queue: procrastinate.App, row: VoiceNote, quote: Quote, transcript: str
) -> None:
    """Queue the transcript's reply in the group, quoting the audio; then the job is done.
    The reply is keyed by the message: a run repeated after a crash queues the same key, and
    the send ledger sends it once."""
    author = row.author_name
    heading = f"🎙️ *Transcrição* ({author}):" if author else "🎙️ *Transcrição*:"
    await queue_text(
        queue,
        context.database,
        tenant_id=row.tenant_id,
        number=row.group_jid,
        text=f"{heading}\n{transcript}",
        max_chars=context.settings.send_max_chars,
        quote=quote,
        key=f"transcript:{row.id}",
    )
    await drop_audio(context.database, row.id)


async def record_failure(database: Database, message_id: uuid.UUID, reason: str) -> None:
    """Give up on a transcription, saying why (shown to the tenant by the frontend)."""
    async with database.session() as session:
        await repository.record_transcription_failure(session, message_id, reason[:500])
        await repository.drop_pending_audio(session, message_id)


async def drop_audio(database: Database, message_id: uuid.UUID) -> None:
    async with database.session() as session:
        await repository.drop_pending_audio(session, message_id)


def _announced_seconds(media: dict[str, Any]) -> int | None:
    return announced_duration(media.get("message"))  # the webhook parser's reading of seconds


def _quote_of(media: dict[str, Any], group_jid: str) -> Quote:
    """The reply quotes the audio: its key, and a minimal audio content for the preview."""
    key = media.get("key") if isinstance(media.get("key"), dict) else {}
    assert isinstance(key, dict)
    seconds = _announced_seconds(media)
    audio: dict[str, Any] = {"ptt": True, "mimetype": "audio/ogg; codecs=opus"}
    if seconds is not None:
        audio["seconds"] = seconds
    participant = key.get("participant")
    return Quote(
        message_id=str(key.get("id", "")),
        chat_jid=group_jid,
        from_me=key.get("fromMe") is True,
        participant=participant if isinstance(participant, str) else None,
        message={"audioMessage": audio},
    )
