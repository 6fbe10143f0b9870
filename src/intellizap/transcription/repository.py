"""The transcription feature's queries: pending audio, the transcript, its usage and failures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_SAVE_AUDIO = text(
    """
    INSERT INTO audios_pendentes (mensagem_id, midia, base64)
    VALUES (:message_id, CAST(:media AS jsonb), :data)
    ON CONFLICT (mensagem_id) DO UPDATE
        SET base64 = COALESCE(EXCLUDED.base64, audios_pendentes.base64)
    """
)


async def save_pending_audio(
    session: AsyncSession, message_id: uuid.UUID, media_json: str, data_base64: str | None
) -> None:
    """Keep what the job needs to fetch the audio (a duplicate keeps the bytes it had)."""
    await session.execute(
        _SAVE_AUDIO, {"message_id": message_id, "media": media_json, "data": data_base64}
    )


_UNTRANSCRIBED = text(
    """
    SELECT id FROM mensagens
    WHERE grupo_id = :group_id AND id_externo = :external_id AND tipo = 'audio'
      AND mensagem IS NULL AND apagada_em IS NULL AND transcricao_erro IS NULL
    """
)


async def untranscribed_audio(
    session: AsyncSession, group_id: uuid.UUID, external_id: str
) -> uuid.UUID | None:
    """The stored audio message still without a transcript or a failure, if any."""
    found: uuid.UUID | None = (
        await session.execute(_UNTRANSCRIBED, {"group_id": group_id, "external_id": external_id})
    ).scalar_one_or_none()
    return found


@dataclass(frozen=True, slots=True)
class VoiceNote:
    """A stored audio message, with what its transcription needs about its group and tenant."""

    id: uuid.UUID
    text: str | None
    deleted_at: datetime | None
    transcription_error: str | None
    external_id: str | None
    author_name: str | None
    group_jid: str
    group_on: bool | None
    tenant_on: bool | None
    tenant_id: uuid.UUID
    instance: str  # a tenant whose groups store messages has its instance
    evolution_token: str | None
    openai_key: str | None
    media: dict[str, Any] | None
    data_base64: str | None


_LOAD = text(
    """
    SELECT m.id, m.mensagem, m.apagada_em, m.transcricao_erro, m.id_externo, m."nome-autor",
           g.grupo_id_externo, g.transcricao_ativa AS group_on, u.transcricao_ativa AS tenant_on,
           u.id AS tenant_id, u.instancia, u.evolution_token, u."key-openai" AS openai_key,
           p.midia, p.base64
    FROM mensagens m
    JOIN grupos g ON g.id = m.grupo_id
    JOIN usuarios u ON u.id = g.usuario_id
    LEFT JOIN audios_pendentes p ON p.mensagem_id = m.id
    WHERE m.id = :id
    """
)


async def voice_note(session: AsyncSession, message_id: uuid.UUID) -> VoiceNote | None:
    """The message to transcribe (None once retention deleted it or its group was removed)."""
    row = (await session.execute(_LOAD, {"id": message_id})).first()
    return None if row is None else VoiceNote(*row)


_RECORD_USAGE = text(
    """
    INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, tokens_saida,
                            segundos_audio, chave, mensagem_id)
    VALUES (:tenant_id, 'transcricao', :model, 0, 0, :seconds, :key_owner, :message_id)
    """
)


async def record_transcription_usage(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    message_id: uuid.UUID,
    model: str,
    seconds: float,
    key_owner: str,
) -> None:
    """Meter one transcription (audio seconds, no tokens) for the tenant's quota."""
    await session.execute(
        _RECORD_USAGE,
        {
            "tenant_id": tenant_id,
            "model": model,
            "seconds": seconds,
            "key_owner": key_owner,
            "message_id": message_id,
        },
    )


_STORE_TRANSCRIPT = text(
    """
    UPDATE mensagens SET mensagem = :transcript
    WHERE id = :id AND mensagem IS NULL AND apagada_em IS NULL
    RETURNING id
    """
)


async def store_transcript(
    session: AsyncSession, message_id: uuid.UUID, transcript: str
) -> uuid.UUID | None:
    """The transcript becomes the message's text, unless it has one or was deleted meanwhile."""
    stored: uuid.UUID | None = (
        await session.execute(_STORE_TRANSCRIPT, {"id": message_id, "transcript": transcript})
    ).scalar_one_or_none()
    return stored


_RECORD_FAILURE = text(
    "UPDATE mensagens SET transcricao_erro = :reason WHERE id = :id AND mensagem IS NULL"
)


async def record_transcription_failure(
    session: AsyncSession, message_id: uuid.UUID, reason: str
) -> None:
    await session.execute(_RECORD_FAILURE, {"id": message_id, "reason": reason})


_DROP_AUDIO = text("DELETE FROM audios_pendentes WHERE mensagem_id = :id")
_FORGET_AUDIO_BYTES = text("UPDATE audios_pendentes SET base64 = NULL WHERE mensagem_id = :id")


async def drop_pending_audio(session: AsyncSession, message_id: uuid.UUID) -> None:
    await session.execute(_DROP_AUDIO, {"id": message_id})


async def forget_audio_bytes(session: AsyncSession, message_id: uuid.UUID) -> None:
    """Drop the audio's bytes but keep its pending row (until the reply is queued)."""
    await session.execute(_FORGET_AUDIO_BYTES, {"id": message_id})


_DELETE_ABANDONED_AUDIO = text("DELETE FROM audios_pendentes WHERE created_at < :before")


async def delete_abandoned_audio(session: AsyncSession, before: datetime) -> None:
    """Retention: pending audio older than ``before`` will never be transcribed."""
    await session.execute(_DELETE_ABANDONED_AUDIO, {"before": before})
