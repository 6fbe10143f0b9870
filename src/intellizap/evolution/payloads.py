"""Evolution webhook bodies → typed events. Pure: no I/O, no logging, no state.

Accepts every shape of the Evolution API reference (``/work/shared/evolution/reference.md``):
v1 (1.8.x) and v2 (2.0 – 2.3.6) envelopes and message data, the three encodings of 64-bit numbers
(number, decimal string, ``{low, high}``) in seconds or milliseconds, PN and LID JIDs with or
without a ``:device`` suffix, message wrappers (ephemeral, view-once, captioned documents, legacy
edits) and the edit/delete events of each version.

Malformed data of a supported event raises :class:`PayloadError`, whose message names the field
and never echoes its value. Unknown events and unknown message types are never errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeAlias

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_INSTANCE_LENGTH",
    "MAX_TEXT_LENGTH",
    "ChatMessage",
    "ConnectionChanged",
    "Envelope",
    "Event",
    "GroupsSeen",
    "Ignored",
    "MessageDeleted",
    "MessageEdited",
    "PayloadError",
    "Reaction",
    "normalise_event_name",
    "normalise_jid",
    "parse_envelope",
    "parse_events",
]

MAX_TEXT_LENGTH: Final = 65_536
MAX_ID_LENGTH: Final = 128
MAX_INSTANCE_LENGTH: Final = 255
MAX_EVENT_LENGTH: Final = 100
MAX_JID_LENGTH: Final = 255
MAX_NAME_LENGTH: Final = 255
MAX_STATE_LENGTH: Final = 64

_MIN_SECONDS: Final = 946_684_800  # 2000-01-01T00:00:00Z: anything earlier predates WhatsApp
_MAX_SECONDS: Final = 4_102_444_800  # 2100-01-01T00:00:00Z
_MILLISECONDS_ABOVE: Final = 100_000_000_000  # larger instants are in milliseconds
_MAX_DURATION: Final = 10_000_000  # seconds (~115 days): longer media durations are nonsense
_MAX_WRAPPER_DEPTH: Final = 8

_UNSAFE_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATES: Final = re.compile(r"[\ud800-\udfff]")
_CONTENT_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_PHONE: Final = re.compile(r"[0-9]{5,20}")
_LID_USER: Final = re.compile(r"[0-9]{1,32}")
_GROUP_JID: Final = re.compile(r"[0-9][0-9-]{0,63}@g\.us")
_DECIMAL: Final = re.compile(r"[+-]?[0-9]{1,20}(?:\.[0-9]{0,9})?")

_Object: TypeAlias = dict[str, object]


class _Missing:
    """Marks a field that is absent (as opposed to ``null``) in error messages."""


_MISSING: Final = _Missing()


class PayloadError(ValueError):
    """The body is not a valid Evolution webhook; the message names the offending field and
    never contains its value."""


# -- public types ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    event: str
    """Lower-case dotted event name, e.g. ``messages.upsert``."""
    instance: str
    """The Evolution instance name, stripped."""
    apikey: str | None
    """The body's ``apikey`` (instance token or global key), when a non-empty string."""
    sender: str | None
    """The instance's own JID (``wuid``), device suffix stripped."""
    data: object
    """The raw ``data``."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A new message (``messages.upsert``, ``send.message``)."""

    chat_jid: str
    """``key.remoteJid`` normalised (see :func:`normalise_jid`); ``…@g.us`` for groups."""
    message_id: str
    """``key.id``: with the instance, the idempotency key."""
    from_me: bool
    author_name: str | None
    """``pushName``, when a non-blank string."""
    author_number: str | None
    """The author's phone digits when a phone is known, else their LID JID (``…@lid``)."""
    sent_at: datetime
    """UTC; the webhook's reception time when the payload has no usable timestamp."""
    kind: str
    """Portuguese type name (``texto``, ``audio``…) or the raw content key for unknown types."""
    text: str | None
    is_voice_note: bool
    media_base64: str | None
    """``data.message.base64``, when the instance webhook has ``base64`` on."""
    media_key: dict[str, object] | None
    """``{key, message}`` as ``getBase64FromMediaMessage`` accepts it, for media types."""
    quoted_message_id: str | None
    seconds: int | None
    """Audio/video duration, when given."""


@dataclass(frozen=True, slots=True)
class Reaction:
    """A reaction to a message: not a chat line."""

    chat_jid: str
    message_id: str
    target_message_id: str
    emoji: str
    """Empty when the reaction was removed."""


@dataclass(frozen=True, slots=True)
class MessageEdited:
    chat_jid: str
    message_id: str
    """The edited (target) message."""
    text: str | None
    edited_at: datetime


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    chat_jid: str
    message_id: str
    """The deleted message."""
    deleted_at: datetime


@dataclass(frozen=True, slots=True)
class GroupsSeen:
    groups: tuple[tuple[str, str | None], ...]
    """(group JID, subject or None), each group once."""


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    state: str
    """Lower-case: ``open``, ``close``, ``connecting``, ``refused``…"""


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str
    """Short and machine-friendly, e.g. ``receipt`` or ``unsupported event qrcode.updated``."""


Event: TypeAlias = (
    ChatMessage
    | Reaction
    | MessageEdited
    | MessageDeleted
    | GroupsSeen
    | ConnectionChanged
    | Ignored
)

# -- envelope --------------------------------------------------------------------------------------

_EVENT_ALIASES: Final[Mapping[str, str]] = {
    # The config name of `groups.update` is GROUP_UPDATE (reference §1.3).
    "group.update": "groups.update",
}


def normalise_event_name(name: str) -> str:
    """``MESSAGES_UPSERT``, ``messages-upsert`` and ``messages.upsert`` → ``messages.upsert``.

    ``group-participants.update`` keeps its hyphen: it is part of the enum value.
    """
    parts = [part for part in re.split(r"[._-]+", name.strip().lower()) if part]
    dotted = ".".join(parts)
    if dotted.startswith("group.participants."):
        dotted = "group-participants." + dotted.removeprefix("group.participants.")
    return _EVENT_ALIASES.get(dotted, dotted)


def normalise_jid(jid: str) -> str:
    """Trim, lower-case and drop a ``:device`` suffix from the user part:
    ``5511…:75@s.whatsapp.net`` → ``5511…@s.whatsapp.net``."""
    user, at, domain = jid.strip().lower().partition("@")
    return f"{user.split(':', 1)[0]}{at}{domain}"


def parse_envelope(body: object) -> Envelope:
    """The envelope of one webhook body (already decoded from JSON)."""
    if not isinstance(body, dict):
        raise PayloadError(
            f"the body must be a JSON object with event, instance and data ({_describe(body)})"
        )
    event = _envelope_field(body, "event", MAX_EVENT_LENGTH, 'an event name like "messages.upsert"')
    normalised = normalise_event_name(event)
    if not normalised:
        raise PayloadError('event must be an event name like "messages.upsert"')
    instance = _envelope_field(body, "instance", MAX_INSTANCE_LENGTH, "the Evolution instance name")
    apikey = body.get("apikey")
    return Envelope(
        event=normalised,
        instance=instance,
        apikey=apikey if isinstance(apikey, str) and apikey else None,
        sender=_optional_jid(body.get("sender")),
        data=body.get("data"),
    )


def _envelope_field(body: Mapping[str, object], name: str, limit: int, what: str) -> str:
    return _require_text(body.get(name, _MISSING), name, limit, what=what)


# -- events ----------------------------------------------------------------------------------------

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
    received_at = received_at.astimezone(UTC)
    event, data, sender = envelope.event, envelope.data, envelope.sender

    if event in _MESSAGE_EVENTS:
        return _each(data, lambda item, path: _message_event(item, path, sender, received_at))
    if event in _PROTOCOL_EVENTS:
        return _each(data, lambda item, path: _protocol_data_event(item, path, sender, received_at))
    if event == "messages.delete":
        return _each(data, lambda item, path: _delete_event(item, path, received_at))
    if event == "messages.update":
        return _each(data, lambda item, path: _update_event(item, path, received_at))
    if event in _GROUP_EVENTS:
        return [_groups_event(data)]
    if event == "connection.update":
        return [_connection_event(data)]
    return [Ignored(f"unsupported event {event}")]


def _each(data: object, parse: _ItemParser) -> list[Event]:
    """``data`` is one object; an array of objects is tolerated (one event per item)."""
    if isinstance(data, list):
        if not data:
            return [Ignored("empty data")]
        return [parse(item, f"data[{index}]") for index, item in enumerate(data)]
    return [parse(data, "data")]


# -- message keys ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    raw: _Object
    chat_jid: str
    message_id: str
    from_me: bool


def _parse_key(value: object, path: str) -> _Key:
    """A Baileys message key: ``{remoteJid, id, fromMe?, participant?…}``."""
    key = _require_object(value, path)
    remote = _require_text(key.get("remoteJid", _MISSING), f"{path}.remoteJid", MAX_JID_LENGTH)
    chat_jid = normalise_jid(remote)
    if not chat_jid or chat_jid.startswith("@"):
        raise PayloadError(
            f"{path}.remoteJid must be a JID like 1203…@g.us or 5511…@s.whatsapp.net"
        )
    message_id = _require_text(key.get("id", _MISSING), f"{path}.id", MAX_ID_LENGTH)
    from_me = key.get("fromMe")
    if from_me is not None and not isinstance(from_me, bool):
        raise PayloadError(f"{path}.fromMe must be true or false ({_describe(from_me)})")
    return _Key(raw=key, chat_jid=chat_jid, message_id=message_id, from_me=from_me is True)


# -- messages.upsert / send.message ----------------------------------------------------------------

_WRAPPERS: Final = frozenset(
    {
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
        "editedMessage",
    }
)
_NOT_CONTENT: Final = frozenset({"messageContextInfo", "senderKeyDistributionMessage"})
_KINDS: Final[Mapping[str, str]] = {
    "conversation": "texto",
    "extendedTextMessage": "texto",
    "imageMessage": "imagem",
    "videoMessage": "video",
    "ptvMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "documento",
    "stickerMessage": "figurinha",
    "pollCreationMessage": "enquete",
    "pollCreationMessageV2": "enquete",
    "pollCreationMessageV3": "enquete",
    "pollCreationMessageV4": "enquete",
    "locationMessage": "localizacao",
    "liveLocationMessage": "localizacao",
    "contactMessage": "contato",
    "contactsArrayMessage": "contato",
    "eventMessage": "evento",
}
# Known types that are not chat lines (votes, pins…): acknowledged, never stored.
_NOT_CHAT_LINES: Final[Mapping[str, str]] = {
    "pollUpdateMessage": "poll vote",
    "encReactionMessage": "encrypted reaction",
    "pinInChatMessage": "pin",
    "keepInChatMessage": "keep in chat",
}
_MEDIA: Final = frozenset(
    {
        "imageMessage",
        "videoMessage",
        "ptvMessage",
        "audioMessage",
        "documentMessage",
        "stickerMessage",
    }
)
_CAPTIONED: Final = frozenset({"imageMessage", "videoMessage", "ptvMessage", "documentMessage"})
_TIMED: Final = frozenset({"audioMessage", "videoMessage", "ptvMessage"})


@dataclass(frozen=True, slots=True)
class _Content:
    type: str
    """The content key, e.g. ``conversation`` or ``imageMessage``."""
    value: object
    via_edit: bool
    """Reached through an ``editedMessage`` wrapper (a legacy edit)."""
    path: str


def _content_type(message: Mapping[str, object]) -> str | None:
    """Baileys' ``getContentType``: the first key that is ``conversation`` or contains
    ``Message`` (``pollCreationMessageV3``, ``viewOnceMessageV2``…), skipping metadata."""
    for name, value in message.items():
        if not isinstance(name, str) or value is None or name in _NOT_CONTENT:
            continue
        if (name == "conversation" or "Message" in name) and _CONTENT_KEY.fullmatch(name):
            return name
    return None


def _content(message: Mapping[str, object], path: str) -> _Content | None:
    """The content of a message, through wrappers (``ephemeralMessage.message`` …)."""
    via_edit = False
    for _ in range(_MAX_WRAPPER_DEPTH):
        content_type = _content_type(message)
        if content_type is None:
            return None
        value = message[content_type]
        if content_type not in _WRAPPERS:
            return _Content(content_type, value, via_edit, f"{path}.{content_type}")
        inner = value.get("message") if isinstance(value, dict) else None
        if not isinstance(inner, dict):
            return None  # an empty wrapper, e.g. a view-once placeholder
        via_edit = via_edit or content_type == "editedMessage"
        path = f"{path}.{content_type}.message"
        message = inner
    return None


def _message_event(item: object, path: str, sender: str | None, received_at: datetime) -> Event:
    data = _require_object(item, path)
    key = _parse_key(data.get("key", _MISSING), f"{path}.key")
    sent_at = _instant(data.get("messageTimestamp"))
    raw_message = data.get("message")
    if not isinstance(raw_message, dict):
        return Ignored("no content")
    content = _content(raw_message, f"{path}.message")
    if content is None:
        return Ignored("no content")
    if content.type == "protocolMessage":
        if not isinstance(content.value, dict):
            return Ignored("protocol message")
        return _protocol_event(
            content.value,
            content.path,
            received_at,
            chat_jid=key.chat_jid,
            fallback_at=sent_at,
        )
    if content.via_edit:
        return Ignored("edit without target")
    if content.type == "reactionMessage":
        return _reaction(content.value, key)
    if content.type in _NOT_CHAT_LINES:
        return Ignored(_NOT_CHAT_LINES[content.type])
    return _chat_message(data, raw_message, key, content, sender, sent_at or received_at)


def _chat_message(
    data: _Object,
    raw_message: _Object,
    key: _Key,
    content: _Content,
    sender: str | None,
    sent_at: datetime,
) -> ChatMessage:
    body = content.value if isinstance(content.value, dict) else None
    media_base64 = raw_message.get("base64")
    media_key: dict[str, object] | None = None
    if content.type in _MEDIA:
        media_key = {
            "key": dict(key.raw),
            "message": {name: value for name, value in raw_message.items() if name != "base64"},
        }
    return ChatMessage(
        chat_jid=key.chat_jid,
        message_id=key.message_id,
        from_me=key.from_me,
        author_name=_name(data.get("pushName")),
        author_number=_author_number(key, sender),
        sent_at=sent_at,
        kind=_KINDS.get(content.type, content.type),
        text=_text(content.type, content.value),
        is_voice_note=(
            content.type == "audioMessage" and body is not None and body.get("ptt") is True
        ),
        media_base64=media_base64 if isinstance(media_base64, str) and media_base64 else None,
        media_key=media_key,
        quoted_message_id=_quoted_id(data, body),
        seconds=_duration(body) if content.type in _TIMED and body is not None else None,
    )


def _reaction(value: object, key: _Key) -> Event:
    if not isinstance(value, dict):
        return Ignored("malformed reaction")
    target = value.get("key")
    target_id = _optional_id(target.get("id")) if isinstance(target, dict) else None
    if target_id is None:
        return Ignored("malformed reaction")
    emoji = value.get("text")
    return Reaction(
        chat_jid=key.chat_jid,
        message_id=key.message_id,
        target_message_id=target_id,
        emoji=_clean(emoji)[:MAX_NAME_LENGTH] if isinstance(emoji, str) else "",
    )


def _text(content_type: str, value: object) -> str | None:
    if content_type == "conversation":
        return _optional_text(value)
    if not isinstance(value, dict):
        return None
    if content_type == "extendedTextMessage":
        return _optional_text(value.get("text"))
    if content_type in _CAPTIONED:
        return _optional_text(value.get("caption"))
    if content_type.startswith("pollCreationMessage"):
        return _poll_text(value)
    if content_type in ("locationMessage", "liveLocationMessage"):
        parts = [_optional_text(value.get(name)) for name in ("name", "address", "caption")]
        return _joined([part for part in parts if part], " — ")
    if content_type == "contactMessage":
        return _optional_text(value.get("displayName"))
    if content_type == "contactsArrayMessage":
        contacts = value.get("contacts")
        names = [
            _optional_text(contact.get("displayName"))
            for contact in (contacts if isinstance(contacts, list) else [])
            if isinstance(contact, dict)
        ]
        return _optional_text(value.get("displayName")) or _joined(
            [name for name in names if name], ", "
        )
    if content_type == "eventMessage":
        return _optional_text(value.get("name"))
    return None


def _poll_text(poll: _Object) -> str | None:
    options = poll.get("options")
    names = [
        _optional_text(option.get("optionName"))
        for option in (options if isinstance(options, list) else [])
        if isinstance(option, dict)
    ]
    name = _optional_text(poll.get("name"))
    return _joined(([name] if name else []) + [f"• {option}" for option in names if option], "\n")


def _quoted_id(data: _Object, body: _Object | None) -> str | None:
    """``stanzaId`` of the reply context: v2 lifts it to ``data.contextInfo``; v1 and media keep
    it inside the content object."""
    for context in (data.get("contextInfo"), body.get("contextInfo") if body else None):
        if isinstance(context, dict):
            quoted = _optional_id(context.get("stanzaId"))
            if quoted is not None:
                return quoted
    return None


def _duration(body: _Object) -> int | None:
    seconds = _long(body.get("seconds"))
    return seconds if seconds is not None and 0 <= seconds <= _MAX_DURATION else None


# -- authors ---------------------------------------------------------------------------------------

_GROUP_AUTHOR_FIELDS: Final = ("participant", "participantAlt", "participantPn", "senderPn")
_PRIVATE_AUTHOR_FIELDS: Final = ("remoteJid", "remoteJidAlt", "senderPn", "previousRemoteJid")


def _author_number(key: _Key, sender: str | None) -> str | None:
    """The first phone number among the author's JIDs (digits only), else their LID JID.

    Groups and broadcasts name the author in ``participant`` (+ its alternatives); private chats in
    ``remoteJid`` (+ alternatives). A message of our own is authored by the instance (``sender``).
    """
    candidates: list[object]
    if key.chat_jid.endswith(("@g.us", "@broadcast")):
        candidates = [key.raw.get(name) for name in _GROUP_AUTHOR_FIELDS]
        if key.from_me:
            named = any(isinstance(c, str) and c.strip() for c in candidates)
            candidates = [*candidates, sender] if named else [sender]
    else:
        # In a private chat remoteJid is the other person, so our own messages are the sender's.
        candidates = [sender] if key.from_me else [key.raw.get(n) for n in _PRIVATE_AUTHOR_FIELDS]
    for candidate in candidates:
        number = _phone_number(candidate)
        if number is not None:
            return number
    for candidate in candidates:
        lid = _lid(candidate)
        if lid is not None:
            return lid
    return None


def _phone_number(value: object) -> str | None:
    """``5511…[:device]@s.whatsapp.net`` (or ``@c.us``, or bare digits) → ``5511…``."""
    if not isinstance(value, str):
        return None
    user, at, domain = normalise_jid(value).partition("@")
    if at and domain not in ("s.whatsapp.net", "c.us"):
        return None
    return user if _PHONE.fullmatch(user) else None


def _lid(value: object) -> str | None:
    """``2098…[:device]@lid`` → ``2098…@lid``."""
    if not isinstance(value, str):
        return None
    user, _, domain = normalise_jid(value).partition("@")
    return f"{user}@lid" if domain == "lid" and _LID_USER.fullmatch(user) else None


# -- edits and deletes -----------------------------------------------------------------------------

_Action: TypeAlias = Literal["edit", "revoke"]


def _protocol_action(protocol: _Object) -> _Action | None:
    """``MESSAGE_EDIT``/14 → edit, ``REVOKE``/0 → revoke (enum names or numbers, §2.3)."""
    kind = protocol.get("type")
    if isinstance(kind, str):
        kind = kind.strip().upper()
    if isinstance(kind, bool):
        return None
    if kind in ("MESSAGE_EDIT", 14, "14"):
        return "edit"
    if kind in ("REVOKE", 0, "0"):
        return "revoke"
    if kind is None and isinstance(protocol.get("editedMessage"), dict):
        return "edit"
    return None


def _protocol_event(
    protocol: _Object,
    path: str,
    received_at: datetime,
    *,
    chat_jid: str | None = None,
    fallback_at: datetime | None = None,
) -> Event:
    """A ``protocolMessage``: ``messages.edited`` data, or the content of a (legacy) upsert.

    Its ``key`` names the target message (from the editor's side); ``chat_jid`` is the carrier
    message's chat when there is one.
    """
    action = _protocol_action(protocol)
    if action is None:
        return Ignored("protocol message")
    target = _parse_key(protocol.get("key", _MISSING), f"{path}.key")
    at = _instant(protocol.get("timestampMs")) or fallback_at or received_at
    chat = chat_jid or target.chat_jid
    if action == "revoke":
        return MessageDeleted(chat_jid=chat, message_id=target.message_id, deleted_at=at)
    return MessageEdited(
        chat_jid=chat,
        message_id=target.message_id,
        text=_edited_text(protocol.get("editedMessage")),
        edited_at=at,
    )


def _edited_text(edited: object) -> str | None:
    """The new text of an edit: ``{conversation}``, ``{extendedTextMessage}``, a caption…"""
    if not isinstance(edited, dict):
        return None
    content = _content(edited, "")
    inner = edited.get("message")
    if content is None and isinstance(inner, dict):
        content = _content(inner, "")
    if content is None or content.via_edit:
        return None
    return _text(content.type, content.value)


def _protocol_data_event(
    item: object, path: str, sender: str | None, received_at: datetime
) -> Event:
    """``messages.edited`` / ``send.message.update``: the raw ``protocolMessage``."""
    data = _require_object(item, path)
    if "type" not in data and "editedMessage" not in data and isinstance(data.get("message"), dict):
        # Tolerated: a whole carrier message instead of its protocolMessage.
        event = _message_event(data, path, sender, received_at)
        return (
            event if isinstance(event, MessageEdited | MessageDeleted) else Ignored("not an edit")
        )
    return _protocol_event(data, path, received_at)


def _delete_event(item: object, path: str, received_at: datetime) -> Event:
    """``messages.delete``: the deleted message's Baileys key, or (deletes through the API) the
    stored row, whose ``id`` is Evolution's database id and whose ``key`` is the message key."""
    data = _require_object(item, path)
    row_key = data.get("key")
    key = _parse_key(data, path) if row_key is None else _parse_key(row_key, f"{path}.key")
    at = _instant(data.get("timestampMs")) or received_at
    return MessageDeleted(chat_jid=key.chat_jid, message_id=key.message_id, deleted_at=at)


def _update_event(item: object, path: str, received_at: datetime) -> Event:
    """``messages.update``: receipts are ignored, including ``status: DELETED`` (in 2.3.0–2.3.4
    that marks an *edit*, reference §3.1). An update that carries an edited body is an edit."""
    data = _require_object(item, path)
    update = data.get("update")
    for holder in (update, data):
        if not isinstance(holder, dict):
            continue
        for message in (holder.get("message"), holder):
            if isinstance(message, dict):
                found = _edit_body(message)
                if found is not None:
                    return _update_edit(found, data, update, received_at)
    return Ignored("receipt")


def _edit_body(message: _Object) -> tuple[_Object | None, object] | None:
    """(the edit's protocolMessage if any, the new content) when ``message`` carries an edit."""
    for _ in range(_MAX_WRAPPER_DEPTH):
        protocol = message.get("protocolMessage")
        if isinstance(protocol, dict):
            if _protocol_action(protocol) != "edit":
                return None
            return protocol, protocol.get("editedMessage")
        edited = message.get("editedMessage")
        if isinstance(edited, dict):
            inner = edited.get("message")
            if not isinstance(inner, dict):
                return None, edited
            if not isinstance(inner.get("protocolMessage"), dict):
                return None, inner
            message = inner
            continue
        unwrapped = _unwrap_once(message)
        if unwrapped is None:
            return None
        message = unwrapped
    return None


def _unwrap_once(message: _Object) -> _Object | None:
    """The ``.message`` of the first wrapper (``ephemeralMessage`` …) in ``message``, if any."""
    for name, wrapper in message.items():
        if name in _WRAPPERS and isinstance(wrapper, dict):
            inner = wrapper.get("message")
            if isinstance(inner, dict):
                return inner
    return None


def _update_edit(
    found: tuple[_Object | None, object], data: _Object, update: object, received_at: datetime
) -> Event:
    protocol, edited = found
    candidates: list[object] = [
        protocol.get("key") if protocol else None,
        data.get("key"),
        update.get("key") if isinstance(update, dict) else None,
        {"remoteJid": data.get("remoteJid"), "id": data.get("keyId")},  # v2
        {"remoteJid": data.get("remoteJid"), "id": data.get("id")},  # v1 spreads the key
    ]
    for candidate in candidates:
        try:
            target = _parse_key(candidate, "key")
        except PayloadError:
            continue
        at = (_instant(protocol.get("timestampMs")) if protocol else None) or received_at
        return MessageEdited(
            chat_jid=target.chat_jid,
            message_id=target.message_id,
            text=_edited_text(edited),
            edited_at=at,
        )
    return Ignored("edit without target")


# -- groups and connection -------------------------------------------------------------------------


def _groups_event(data: object) -> GroupsSeen:
    """``groups.upsert``/``groups.update`` (arrays) and ``group-participants.update`` (an
    object with ``id``). Items without a group id are skipped."""
    items = data if isinstance(data, list) else [data]
    seen: dict[str, str | None] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        group_id = item.get("id")
        if not isinstance(group_id, str):
            continue
        jid = normalise_jid(group_id)
        if _GROUP_JID.fullmatch(jid) and seen.get(jid) is None:
            seen[jid] = _name(item.get("subject"))
    return GroupsSeen(tuple(seen.items()))


def _connection_event(data: object) -> ConnectionChanged:
    connection = _require_object(data, "data")
    state = _require_text(connection.get("state", _MISSING), "data.state", MAX_STATE_LENGTH)
    return ConnectionChanged(state.lower())


# -- values ----------------------------------------------------------------------------------------


def _describe(value: object) -> str:
    """The JSON type of a value, for error messages (never the value itself)."""
    if isinstance(value, _Missing):
        return "it is missing"
    if value is None:
        return "got null"
    if isinstance(value, bool):
        return "got a boolean"
    if isinstance(value, int | float):
        return "got a number"
    if isinstance(value, str):
        return "got a string"
    if isinstance(value, list):
        return "got an array"
    if isinstance(value, dict):
        return "got an object"
    return f"got a {type(value).__name__}"


def _require_object(value: object, path: str) -> _Object:
    if not isinstance(value, dict):
        raise PayloadError(f"{path} must be an object ({_describe(value)})")
    return value


def _require_text(value: object, path: str, limit: int, *, what: str | None = None) -> str:
    """A non-blank string of at most ``limit`` characters, without control characters;
    ``what`` says in the error what the field should hold."""
    expected = f"{path} must be a non-empty string" + (f", {what}" if what else "")
    if not isinstance(value, str):
        raise PayloadError(f"{expected} ({_describe(value)})")
    text = value.strip()
    if not text:
        raise PayloadError(f"{expected} (got a blank string)")
    if len(text) > limit:
        raise PayloadError(f"{path} must be at most {limit} characters (got {len(text)})")
    if _UNSAFE_CHARS.search(text):
        raise PayloadError(f"{path} must not contain control characters")
    return text


def _optional_id(value: object) -> str | None:
    """A message id where one is optional: invalid → None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_ID_LENGTH or _UNSAFE_CHARS.search(text):
        return None
    return text


def _optional_jid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    jid = normalise_jid(value)
    if not jid or len(jid) > MAX_JID_LENGTH or _UNSAFE_CHARS.search(jid):
        return None
    return jid


def _clean(text: str) -> str:
    """Without NUL characters (PostgreSQL refuses them) and lone surrogates."""
    text = text.replace("\x00", "")
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def _optional_text(value: object) -> str | None:
    """A message text: cleaned and capped; non-strings and blank texts → None."""
    if not isinstance(value, str):
        return None
    text = _clean(value[: MAX_TEXT_LENGTH * 2])[:MAX_TEXT_LENGTH]
    return text if text.strip() else None


def _joined(parts: list[str], separator: str) -> str | None:
    return _optional_text(separator.join(parts)) if parts else None


def _name(value: object) -> str | None:
    """A display name (pushName, group subject): stripped, capped; blank → None."""
    if not isinstance(value, str):
        return None
    name = _clean(value[: MAX_NAME_LENGTH * 2]).strip()[:MAX_NAME_LENGTH]
    return name or None


def _long(value: object) -> int | None:
    """A 64-bit integer in any of Evolution's encodings (reference §2.3): a number, a decimal
    string, or protobufjs' ``{low, high, unsigned}``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        return int(text.split(".", 1)[0]) if _DECIMAL.fullmatch(text) else None
    if isinstance(value, dict):
        low, high = value.get("low"), value.get("high")
        if isinstance(low, int) and isinstance(high, int):
            if isinstance(low, bool) or isinstance(high, bool):
                return None
            return high * 2**32 + (low & 0xFFFFFFFF)
    return None


def _instant(value: object) -> datetime | None:
    """A timestamp in seconds or milliseconds (told apart by magnitude), any encoding; None when
    absent or absurd (before 2000 or from 2100 on)."""
    number = _long(value)
    if number is None or number <= 0:
        return None
    seconds, milliseconds = divmod(number, 1000) if number > _MILLISECONDS_ABOVE else (number, 0)
    if not _MIN_SECONDS <= seconds < _MAX_SECONDS:
        return None
    return datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=milliseconds)
