"""Finding our own sends in Evolution's message store (``POST /chat/findMessages/{instance}``).

Read from Evolution's source (2.3.6 ``whatsapp.baileys.service.ts`` ``fetchMessages``, 1.8.2
``message.repository.ts``): v2 takes ``{"where": {"key": {...}, "messageTimestamp": {"gte",
"lte"}}, "offset": <page size>, "page": n}`` and answers ``{"messages": {"total", "pages",
"currentPage", "records": [...]}}``, newest first; the time filter applies only when both bounds
are given, each parsed with ``new Date()``. v1 takes ``{"where": {"key": {...}}, "limit": n}``,
has no time filter, and answers a list, newest first. Records have the shape of a
``messages.upsert`` ``data`` (``key``, ``message``, ``messageTimestamp`` in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Messages read per page, and the most pages read for one search.
PAGE_SIZE = 100
MAX_PAGES = 5


@dataclass(frozen=True, slots=True)
class FoundMessage:
    """A message of ours that Evolution has on record (``findMessages``)."""

    message_id: str
    text: str | None
    sent_at: datetime | None


def search_body(
    api_version: int, chat_jid: str, since: datetime, until: datetime, page: int
) -> dict[str, Any]:
    """The request for page ``page`` of our messages in ``chat_jid`` between the two instants."""
    where: dict[str, Any] = {"key": {"remoteJid": chat_jid, "fromMe": True}}
    if api_version == 1:
        return {"where": where, "limit": PAGE_SIZE * MAX_PAGES}
    where["messageTimestamp"] = {"gte": _iso(since), "lte": _iso(until)}
    return {"where": where, "offset": PAGE_SIZE, "page": page}


def pages(response: Any) -> int:
    """How many pages to read in all (v1 has one; capped at :data:`MAX_PAGES`)."""
    messages = response.get("messages") if isinstance(response, dict) else None
    count = messages.get("pages") if isinstance(messages, dict) else None
    return min(count, MAX_PAGES) if isinstance(count, int) and count > 0 else 1


def found_messages(response: Any) -> list[FoundMessage]:
    """The records of one answer that have a message id; anything malformed is skipped."""
    found = []
    for record in _records(response):
        if not isinstance(record, dict) or not isinstance(record.get("key"), dict):
            continue
        message_id = record["key"].get("id")
        if not isinstance(message_id, str) or not message_id:
            continue
        found.append(
            FoundMessage(
                message_id=message_id,
                text=_message_text(record.get("message")),
                sent_at=_timestamp(record.get("messageTimestamp")),
            )
        )
    return found


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _records(response: Any) -> list[Any]:
    """v2: ``{"messages": {"records": [...]}}``; v1: a list."""
    if isinstance(response, list):
        return response
    messages = response.get("messages") if isinstance(response, dict) else None
    records = messages.get("records") if isinstance(messages, dict) else None
    return records if isinstance(records, list) else []


def _message_text(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    if isinstance(message.get("conversation"), str):
        return str(message["conversation"])
    extended = message.get("extendedTextMessage")
    if isinstance(extended, dict) and isinstance(extended.get("text"), str):
        return str(extended["text"])
    return None


def _timestamp(value: Any) -> datetime | None:
    """Seconds since the epoch as a number, a decimal string or protobuf's ``{low, high}``."""
    if isinstance(value, dict) and isinstance(value.get("low"), int):
        high = value.get("high")
        value = (high if isinstance(high, int) else 0) * 2**32 + (value["low"] & 0xFFFFFFFF)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 2**34:
        return datetime.fromtimestamp(value, UTC)
    return None
