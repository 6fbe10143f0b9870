"""The ingest feature's queries: the message writer's batch insert (the hot path), edits and
deletes waiting for their message, retention, and reading stored messages back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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


# -- the message writer (hot path: one statement per flush, on the writer's own connection) -----

# One statement, autocommitted, inserts the batch and says whether any of its messages has an edit
# or delete waiting (almost never): only then is a second transaction spent applying it. The rows
# travel as one JSON parameter: serialising them is one orjson call, where eight typed arrays
# would cost psycopg a Python-level dump of every element.
_INSERT_MESSAGES: LiteralString = """
    WITH batch AS (
        SELECT * FROM json_to_recordset(%s::json) AS b (
            group_id uuid, external_id varchar, text text, author_name varchar,
            author_number varchar, sent_at timestamptz, kind varchar, from_me boolean
        )
    ),
    inserted AS (
        INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor", "numero-autor",
                               data_mensagem, tipo, enviada_por_mim)
        SELECT * FROM batch
        ON CONFLICT (grupo_id, id_externo) DO NOTHING
        RETURNING grupo_id, id_externo, id
    )
    SELECT grupo_id, id_externo, id, false AS pending FROM inserted
    UNION ALL
    SELECT NULL, NULL, NULL, true WHERE EXISTS (
        SELECT 1 FROM alteracoes_pendentes p
        JOIN batch b ON p.grupo_id = b.group_id AND p.id_externo = b.external_id
    )
"""


async def insert_messages(
    conn: psycopg.AsyncConnection[tuple[Any, ...]], rows_json: str
) -> list[tuple[Any, ...]]:
    """Insert a batch (a JSON array of :class:`~intellizap.ingest.writer.NewMessage`), skipping
    messages already stored: (grupo_id, id_externo, id, false) per new row, plus one
    (NULL, NULL, NULL, true) row when an edit or delete waits for one of the batch's messages."""
    cursor = await conn.execute(_INSERT_MESSAGES, (rows_json,))
    return await cursor.fetchall()


# -- edits and deletes (see changes.py) ------------------------------------------------------------

_MERGE_PENDING = text(
    """
    INSERT INTO alteracoes_pendentes AS p (grupo_id, id_externo, mensagem, editada_em, apagada_em)
    VALUES (:group_id, :external_id, :text, :edited_at, :deleted_at)
    ON CONFLICT (grupo_id, id_externo) DO UPDATE SET
        mensagem = CASE
            WHEN EXCLUDED.editada_em IS NOT NULL
                 AND (p.editada_em IS NULL OR EXCLUDED.editada_em >= p.editada_em)
            THEN EXCLUDED.mensagem ELSE p.mensagem END,
        editada_em = GREATEST(p.editada_em, EXCLUDED.editada_em),
        apagada_em = COALESCE(p.apagada_em, EXCLUDED.apagada_em)
    """
)

_APPLY = text(
    """
    WITH applied AS (
        DELETE FROM alteracoes_pendentes p
        USING mensagens m
        WHERE m.grupo_id = p.grupo_id AND m.id_externo = p.id_externo
          AND (p.grupo_id, p.id_externo) IN (
              SELECT * FROM unnest(CAST(:group_ids AS uuid[]), CAST(:external_ids AS varchar[])))
        RETURNING p.grupo_id, p.id_externo, p.mensagem, p.editada_em, p.apagada_em
    )
    UPDATE mensagens m SET
        apagada_em = COALESCE(m.apagada_em, a.apagada_em),
        editada_em = CASE
            WHEN a.editada_em IS NOT NULL AND (m.editada_em IS NULL OR a.editada_em >= m.editada_em)
            THEN a.editada_em ELSE m.editada_em END,
        mensagem = CASE
            WHEN COALESCE(m.apagada_em, a.apagada_em) IS NOT NULL THEN NULL
            WHEN a.editada_em IS NOT NULL AND (m.editada_em IS NULL OR a.editada_em >= m.editada_em)
            THEN a.mensagem
            ELSE m.mensagem END
    FROM applied a
    WHERE m.grupo_id = a.grupo_id AND m.id_externo = a.id_externo
    """
)


async def merge_pending_change(
    session: AsyncSession,
    *,
    group_id: uuid.UUID,
    external_id: str,
    text: str | None,
    edited_at: datetime | None,
    deleted_at: datetime | None,
) -> None:
    """Merge an edit or delete into the message's pending change (a delete always wins, the
    latest edit gives the text)."""
    await session.execute(
        _MERGE_PENDING,
        {
            "group_id": group_id,
            "external_id": external_id,
            "text": text,
            "edited_at": edited_at,
            "deleted_at": deleted_at,
        },
    )


async def apply_pending_changes(
    session: AsyncSession, keys: Sequence[tuple[uuid.UUID, str]]
) -> None:
    """Apply to ``mensagens`` the pending changes of these (group, external id) whose message is
    stored, removing them."""
    await session.execute(
        _APPLY,
        {
            "group_ids": [group_id for group_id, _ in keys],
            "external_ids": [external_id for _, external_id in keys],
        },
    )


_WITH_THEIR_MESSAGE = text(
    """
    SELECT grupo_id, id_externo FROM alteracoes_pendentes p
    WHERE EXISTS (
        SELECT 1 FROM mensagens m WHERE m.grupo_id = p.grupo_id AND m.id_externo = p.id_externo
    )
    """
)


async def changes_with_their_message(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """The (group, external id) of every pending change whose message has arrived."""
    return [(row[0], row[1]) for row in (await session.execute(_WITH_THEIR_MESSAGE)).all()]


# -- retention -----------------------------------------------------------------------------------

_DELETE_OLD_MESSAGES = text(
    "DELETE FROM mensagens WHERE id IN ("
    " SELECT id FROM mensagens WHERE data_mensagem < :before LIMIT :batch)"
)
_DELETE_STALE = (
    text("DELETE FROM alteracoes_pendentes WHERE created_at < :before"),
    text("DELETE FROM mensagens_enviadas WHERE created_at < :before"),
)


async def delete_messages_before(session: AsyncSession, before: datetime, *, limit: int) -> int:
    """Delete up to ``limit`` messages sent before ``before``; returns how many."""
    result = await session.execute(_DELETE_OLD_MESSAGES, {"before": before, "batch": limit})
    deleted: int = result.rowcount  # type: ignore[attr-defined]
    return deleted


async def delete_stale_rows(session: AsyncSession, before: datetime) -> None:
    """Forget pending changes whose message never came and sent-message ids older than
    ``before``."""
    for statement in _DELETE_STALE:
        await session.execute(statement, {"before": before})
