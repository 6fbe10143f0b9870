"""Shared values and body builders for the payload parser tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intellizap.evolution.payloads import (
    ChatMessage,
    Event,
    parse_envelope,
    parse_events,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "evolution"

RECEIVED = datetime(2025, 10, 22, 9, 0, tzinfo=UTC)
SENT = datetime(2025, 10, 21, 14, 3, 12, tzinfo=UTC)  # messageTimestamp 1761055392
EDITED = datetime(2025, 10, 21, 14, 3, 32, 345_000, tzinfo=UTC)  # timestampMs 1761055412345
SENT_SECONDS = 1_761_055_392
EDIT_MS = 1_761_055_412_345

INSTANCE = "acme-support"
APIKEY = "B6D9F1A2-3C4E-4F5A-8B7C-9D0E1F2A3B4C"
SENDER = "5511999990000@s.whatsapp.net"
GROUP = "120363401234567890@g.us"
CONTACT = "5511988880001@s.whatsapp.net"
MEMBER = "5521977770002@s.whatsapp.net"
MEMBER_LID = "209876543210987@lid"
CONTACT_LID = "184467440737095@lid"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def events_of(body: object, received_at: datetime = RECEIVED) -> list[Event]:
    return parse_events(parse_envelope(body), received_at)


def event_of(body: object) -> Event:
    [event] = events_of(body)
    return event


def chat_message(body: object) -> ChatMessage:
    event = event_of(body)
    assert isinstance(event, ChatMessage), event
    return event


def webhook(event: str, data: object, *, sender: str | None = SENDER) -> dict[str, Any]:
    body: dict[str, Any] = {"event": event, "instance": INSTANCE, "data": data, "apikey": APIKEY}
    if sender is not None:
        body["sender"] = sender
    return body


def group_key(**changes: Any) -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJid": GROUP, "fromMe": False, "id": "MSG1", "participant": MEMBER}
    key.update(changes)
    return {name: value for name, value in key.items() if value is not None}


def upsert(
    message: object,
    *,
    key: dict[str, Any] | None = None,
    event: str = "messages.upsert",
    sender: str | None = SENDER,
    **fields: Any,
) -> dict[str, Any]:
    """A v2 ``messages.upsert`` body (group text by default) with the given message content."""
    data: dict[str, Any] = {
        "key": key if key is not None else group_key(),
        "pushName": "Bruno Lima",
        "status": "DELIVERY_ACK",
        "message": message,
        "messageTimestamp": SENT_SECONDS,
    }
    data.update(fields)
    return webhook(event, data, sender=sender)
