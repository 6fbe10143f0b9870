"""Queries about stored messages that are not on the webhook's hot path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from intellizap.db.engine import Database


@dataclass(frozen=True, slots=True)
class StoredMessage:
    external_id: str
    author_name: str | None
    kind: str | None
    text: str | None
    sent_at: datetime | None


_STORED = text(
    """
    SELECT id_externo, "nome-autor", tipo, mensagem, data_mensagem FROM mensagens
    WHERE grupo_id = :group_id AND id_externo = ANY(CAST(:ids AS varchar[]))
    ORDER BY data_mensagem, id_externo
    """
)


async def stored_messages(
    database: Database, group_id: uuid.UUID, external_ids: list[str]
) -> list[StoredMessage]:
    """Which of ``external_ids`` are stored in the group (``intellizap demo`` reads them back)."""
    async with database.session() as session:
        rows = (await session.execute(_STORED, {"group_id": group_id, "ids": external_ids})).all()
    return [StoredMessage(*row) for row in rows]
