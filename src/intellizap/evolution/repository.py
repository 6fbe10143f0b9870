"""Queries of the Evolution gateway's own tables outside the send ledger module: the echoes that
settle a send whose outcome is unknown (:mod:`intellizap.evolution.send_witnesses`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession

_CLAIMED = sql(
    "SELECT id_externo FROM envios WHERE usuario_id = :tenant_id AND id_externo IN :ids"
).bindparams(bindparam("ids", expanding=True))


async def confirming_message_ids(
    session: AsyncSession, tenant_id: uuid.UUID, message_ids: list[str]
) -> set[str]:
    """Which of these WhatsApp message ids already confirm one of the tenant's sends."""
    rows = await session.execute(_CLAIMED, {"tenant_id": tenant_id, "ids": message_ids})
    return set(rows.scalars())


_ECHO = sql(
    """
    UPDATE envios e
    SET status = 'enviado', id_externo = :message_id,
        respondido_em = COALESCE(e.respondido_em, now()), concluido_em = now(), texto = NULL,
        erro = NULL
    FROM (
        SELECT id FROM envios
        WHERE usuario_id = :tenant_id AND status = 'enviando' AND destino_jid = :chat_jid
          AND texto_hash = :hash AND postado_em <= CAST(:sent_at AS timestamptz) + :skew
          AND NOT EXISTS (
              SELECT 1 FROM envios o
              WHERE o.usuario_id = :tenant_id AND o.id_externo = :message_id
          )
        ORDER BY postado_em DESC
        LIMIT 1
        FOR UPDATE
    ) target
    WHERE e.id = target.id
    RETURNING e.id
    """
)


async def settle_by_echo(session: AsyncSession, params: dict[str, Any]) -> int | None:
    """Mark ``enviado`` the newest send whose outcome is unknown that this echo (``tenant_id``,
    ``chat_jid``, ``hash``, ``message_id``, ``sent_at``, ``skew``) matches; its id, or None."""
    matched: int | None = (await session.execute(_ECHO, params)).scalar_one_or_none()
    return matched
