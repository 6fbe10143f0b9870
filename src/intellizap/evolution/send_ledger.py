"""The send ledger (table ``envios``): what the backend sends to WhatsApp, and what became of it.

A row is written when a message is queued, before anything is posted, and goes

    pendente ──(POST starts)──▶ enviando ──(201 / found in Evolution / send.message)──▶ enviado
        ▲                          │
        └──(it did not go out)─────┘         and, for good: falhou, or cancelado (an earlier
                                             part of the same message failed)

``enviando`` is the only state whose outcome is unknown: a POST was started and no answer said
what happened. Two witnesses settle it (``send_witnesses.py``): Evolution's ``send.message``
webhook, which ingest hands over, and Evolution's message store (``findMessages``), which the send
job asks. Evolution chooses the message id, so a witness is matched to its row by (tenant, chat,
hash of the text, time of the POST); a message id confirms one row at most.

This module holds the ledger's states and rows; its statements are in ``repository.py`` (the only
place that reads or writes ``envios`` and ``mensagens_enviadas``). Features learn the outcome
through the completion task they name when queueing.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

#: How far Evolution's clock may be from the database's when times are compared.
CLOCK_SKEW = timedelta(minutes=2)


class Status(StrEnum):
    PENDING = "pendente"
    SENDING = "enviando"
    SENT = "enviado"
    FAILED = "falhou"
    CANCELLED = "cancelado"


FINAL = frozenset({Status.SENT, Status.FAILED, Status.CANCELLED})


@dataclass(frozen=True, slots=True)
class Completion:
    """A task to run once a whole message (every part) is sent or has failed for good: it
    gets ``args`` plus ``sent`` (bool) and ``reason`` (why not, in pt-BR, or None)."""

    task: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Send:
    id: int
    tenant_id: uuid.UUID
    batch: str
    part: int
    parts: int
    number: str
    chat_jid: str
    text: str | None
    fingerprint: str
    quote: dict[str, Any] | None
    on_done: Completion | None
    status: Status
    attempts: int
    posted_at: datetime | None
    message_id: str | None
    error: str | None
    now: datetime
    """The database's clock when the row was read (every time here is on that clock)."""
    mentions: list[str] = field(default_factory=list)
    """The numbers this part mentions (WhatsApp notifies them)."""
    earlier_part_failed: bool = False
    """A part before this one failed for good (then this one is not sent: a summary missing its
    beginning would mislead)."""
    busy_until: datetime | None = None
    """When the instance may send again (the pacing interval after its latest POST ended), if
    that is still ahead."""
    began_at: datetime | None = None
    """Set when reading the row also began an attempt (the POST is to be made now)."""
    instance: str | None = None
    """The tenant's Evolution instance, and its own API token (when known)."""
    token: str | None = field(default=None, repr=False)

    @property
    def is_last(self) -> bool:
        return self.part == self.parts - 1


def fingerprint(value: str) -> str:
    """What recognises a text when Evolution echoes it (NULs and outer blanks never survive the
    trip through the webhook parser, so they do not count)."""
    return hashlib.sha256(value.replace("\x00", "").strip().encode()).hexdigest()


def chat_jid_of(number: str) -> str:
    """The chat Evolution files a send to ``number`` under: its ``createJid``, lower-cased as
    ``sendMessageWithTyping`` does. (For a phone number Evolution may still rewrite the digits —
    Brazil's ninth digit, the ``onWhatsApp`` answer — but the backend only sends to groups.)"""
    number = re.sub(r":\d+", "", number.strip(), count=1)
    if any(suffix in number for suffix in ("@g.us", "@s.whatsapp.net", "@lid", "@broadcast")):
        return number.lower()
    number = re.sub(r"[\s+()]", "", number).split(":")[0].split("@")[0]
    if "-" in number and len(number) >= 24:
        return re.sub(r"[^\d-]", "", number) + "@g.us"
    digits = re.sub(r"\D", "", number)
    return f"{digits}@g.us" if len(digits) >= 18 else f"{digits}@s.whatsapp.net"
