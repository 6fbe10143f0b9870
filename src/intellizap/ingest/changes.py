"""Edits and deletes, applied so that any arrival order converges to the same final state.

Evolution delivers events concurrently and retries them, so an edit or a delete can arrive
before the message it changes. Every change is first merged into ``alteracoes_pendentes`` and
then applied to ``mensagens`` by :func:`apply_pending_changes`, which the change path runs after
its own commit, and the message writer runs after its commit when its insert saw a pending change
for one of its messages. The one interleaving neither sees (the change commits while the
message's insert is between its statement and its commit, and applies before that commit) is
closed by :func:`apply_all_pending_changes`, run every minute.

Final state: a delete always wins (``apagada_em`` set, text cleared); otherwise the edit with the
latest timestamp gives the text and ``editada_em``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text

from intellizap.db.engine import Database

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


async def record_change(
    database: Database,
    *,
    group_id: uuid.UUID,
    external_id: str,
    text: str | None = None,
    edited_at: datetime | None = None,
    deleted_at: datetime | None = None,
) -> None:
    """Record an edit (``text`` + ``edited_at``) or a delete (``deleted_at``) of a message,
    whether or not the message has arrived yet."""
    async with database.session() as session:
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
    await apply_pending_changes(database, [(group_id, external_id)])


async def apply_pending_changes(database: Database, keys: Sequence[tuple[uuid.UUID, str]]) -> None:
    """Apply the pending changes of these messages that are now stored. Call after committing."""
    if not keys:
        return
    async with database.session() as session:
        await session.execute(
            _APPLY,
            {
                "group_ids": [group_id for group_id, _ in keys],
                "external_ids": [external_id for _, external_id in keys],
            },
        )


_APPLY_ALL = text(
    """
    SELECT grupo_id, id_externo FROM alteracoes_pendentes p
    WHERE EXISTS (
        SELECT 1 FROM mensagens m WHERE m.grupo_id = p.grupo_id AND m.id_externo = p.id_externo
    )
    """
)


async def apply_all_pending_changes(database: Database) -> int:
    """Apply every pending change whose message has arrived; returns how many."""
    async with database.session() as session:
        keys = [(row[0], row[1]) for row in (await session.execute(_APPLY_ALL)).all()]
    await apply_pending_changes(database, keys)
    return len(keys)
