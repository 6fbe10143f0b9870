"""The envelope of a webhook body, and the routing of its ``data`` to the event parsers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final, TypeAlias

from intellizap.evolution.payloads.changes import delete_event, protocol_event, update_event
from intellizap.evolution.payloads.events import (
    INVALID_GROUP_JID,
    Envelope,
    Event,
    Ignored,
    MessageDeleted,
    MessageEdited,
    PayloadError,
)
from intellizap.evolution.payloads.instance import connection_event, groups_event
from intellizap.evolution.payloads.keys import InvalidGroupJid, optional_jid
from intellizap.evolution.payloads.messages import message_event
from intellizap.evolution.payloads.values import (
    MAX_EVENT_LENGTH,
    MAX_INSTANCE_LENGTH,
    MISSING,
    describe,
    require_object,
    require_text,
)

_EVENT_ALIASES: Final[Mapping[str, str]] = {
    # The config name of `groups.update` is GROUP_UPDATE (reference §1.3).
    "group.update": "groups.update",
}
_SEPARATORS: Final = re.compile(r"[._-]+")
_CANONICAL: Final = frozenset(
    {
        "messages.upsert",
        "messages.update",
        "messages.delete",
        "messages.edited",
        "send.message",
        "send.message.update",
        "groups.upsert",
        "groups.update",
        "group-participants.update",
        "connection.update",
    }
)


def normalise_event_name(name: str) -> str:
    """``MESSAGES_UPSERT``, ``messages-upsert`` and ``messages.upsert`` → ``messages.upsert``.

    ``group-participants.update`` keeps its hyphen: it is part of the enum value.
    """
    if name in _CANONICAL:
        return name  # what Evolution sends: no need to take it apart
    parts = [part for part in _SEPARATORS.split(name.strip().lower()) if part]
    dotted = ".".join(parts)
    if dotted.startswith("group.participants."):
        dotted = "group-participants." + dotted.removeprefix("group.participants.")
    return _EVENT_ALIASES.get(dotted, dotted)


def parse_envelope(body: object) -> Envelope:
    """The envelope of one webhook body (already decoded from JSON)."""
    if not isinstance(body, dict):
        raise PayloadError(
            f"the body must be a JSON object with event, instance and data ({describe(body)})"
        )
    event = require_text(
        body.get("event", MISSING),
        "event",
        MAX_EVENT_LENGTH,
        what='an event name like "messages.upsert"',
    )
    normalised = normalise_event_name(event)
    if not normalised:
        raise PayloadError('event must be an event name like "messages.upsert"')
    instance = require_text(
        body.get("instance", MISSING),
        "instance",
        MAX_INSTANCE_LENGTH,
        what="the Evolution instance name",
    )
    apikey = body.get("apikey")
    return Envelope(
        event=normalised,
        instance=instance,
        apikey=apikey if isinstance(apikey, str) and apikey else None,
        sender=optional_jid(body.get("sender")),
        data=body.get("data"),
    )


_MESSAGE_EVENTS: Final = frozenset({"messages.upsert", "send.message"})
_PROTOCOL_EVENTS: Final = frozenset({"messages.edited", "send.message.update"})
_GROUP_EVENTS: Final = frozenset({"groups.upsert", "groups.update", "group-participants.update"})

_ItemParser: TypeAlias = Callable[[object, str], Event]


def parse_events(envelope: Envelope, received_at: datetime) -> list[Event]:
    """The events carried by one webhook: one per ``data`` item (usually one).

    ``received_at`` (timezone-aware) stands in for timestamps the payload lacks. Raises
    :class:`PayloadError` for malformed data of a supported event; unsupported events are
    ``[Ignored(...)]``.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    if received_at.tzinfo is not UTC:
        received_at = received_at.astimezone(UTC)
    event, data, sender = envelope.event, envelope.data, envelope.sender

    if event in _MESSAGE_EVENTS:
        return _each(data, lambda item, path: message_event(item, path, sender, received_at))
    if event in _PROTOCOL_EVENTS:
        return _each(data, lambda item, path: _protocol_data(item, path, sender, received_at))
    if event == "messages.delete":
        return _each(data, lambda item, path: delete_event(item, path, received_at))
    if event == "messages.update":
        return _each(data, lambda item, path: update_event(item, path, received_at))
    if event in _GROUP_EVENTS:
        return [groups_event(data)]
    if event == "connection.update":
        return [connection_event(data)]
    return [Ignored(f"unsupported event {event}")]


def _each(data: object, parse: _ItemParser) -> list[Event]:
    """``data`` is one object; an array of objects is tolerated (one event per item). An item
    naming an invalid group is ignored, not an error: it must never become a ``grupos`` row."""
    if isinstance(data, list):
        if not data:
            return [Ignored("empty data")]
        return [_one(parse, item, f"data[{index}]") for index, item in enumerate(data)]
    return [_one(parse, data, "data")]


def _one(parse: _ItemParser, item: object, path: str) -> Event:
    try:
        return parse(item, path)
    except InvalidGroupJid:
        return Ignored(INVALID_GROUP_JID)


def _protocol_data(item: object, path: str, sender: str | None, received_at: datetime) -> Event:
    """``messages.edited`` / ``send.message.update``: the raw ``protocolMessage``."""
    data = require_object(item, path)
    if "type" not in data and "editedMessage" not in data and isinstance(data.get("message"), dict):
        # Tolerated: a whole carrier message instead of its protocolMessage.
        event = message_event(data, path, sender, received_at)
        return (
            event if isinstance(event, MessageEdited | MessageDeleted) else Ignored("not an edit")
        )
    return protocol_event(data, path, received_at)
