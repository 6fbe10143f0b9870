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

from intellizap.db.engine import Database
from intellizap.ingest import repository


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
        await repository.merge_pending_change(
            session,
            group_id=group_id,
            external_id=external_id,
            text=text,
            edited_at=edited_at,
            deleted_at=deleted_at,
        )
    await apply_pending_changes(database, [(group_id, external_id)])


async def apply_pending_changes(database: Database, keys: Sequence[tuple[uuid.UUID, str]]) -> None:
    """Apply the pending changes of these messages that are now stored. Call after committing."""
    if not keys:
        return
    async with database.session() as session:
        await repository.apply_pending_changes(session, keys)


async def apply_all_pending_changes(database: Database) -> int:
    """Apply every pending change whose message has arrived; returns how many."""
    async with database.session() as session:
        keys = await repository.changes_with_their_message(session)
    await apply_pending_changes(database, keys)
    return len(keys)
