"""What settles a send whose outcome is unknown (``enviando`` in the send ledger).

Evolution chooses a message's id, so a message it reports is matched to a send by what the send
knows: its tenant, its chat, the hash of its text, and that it was created after the POST began
(within :data:`~intellizap.evolution.send_ledger.CLOCK_SKEW`). A message id settles one send at
most, so a replayed echo or an older message with the same text settles nothing new.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from intellizap.db.engine import Database
from intellizap.evolution import repository
from intellizap.evolution.send_ledger import CLOCK_SKEW, fingerprint


async def claimed(database: Database, tenant_id: uuid.UUID, message_ids: list[str]) -> set[str]:
    """Which of these message ids already confirm a ledger row (the send job takes the others
    when it looks its message up in Evolution's store)."""
    if not message_ids:
        return set()
    async with database.session() as session:
        return await repository.confirming_message_ids(session, tenant_id, message_ids)


async def record_echo(
    database: Database,
    *,
    tenant_id: uuid.UUID,
    chat_jid: str,
    message_id: str,
    text: str | None,
    sent_at: datetime,
) -> bool:
    """A message of ours that Evolution reports (``send.message``, or any ``fromMe`` message):
    if it is the one a send whose outcome is unknown was waiting for, that send is ``enviado``.
    Returns whether it was. Repeated or unrelated echoes change nothing."""
    if not text:
        return False
    params = {
        "tenant_id": tenant_id,
        "chat_jid": chat_jid.lower(),
        "hash": fingerprint(text),
        "message_id": message_id,
        "sent_at": sent_at,
        "skew": CLOCK_SKEW,
    }
    async with database.session() as session:
        matched = await repository.settle_by_echo(session, params)
        if matched is not None:
            await repository.record_our_own(session, params)
    return matched is not None
