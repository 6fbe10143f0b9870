"""Evolution webhook bodies → typed events. Pure: no I/O, no state.

Accepts every shape ``reference.md`` describes: v1 (1.8.x) and v2 (2.0 – 2.3.6) envelopes, the
three encodings of 64-bit numbers (number, decimal string, ``{low, high}``), PN and LID JIDs with
or without ``:device`` suffixes, message wrappers (ephemeral, view-once, captioned documents,
legacy edits) and the edit/delete events of each version. Malformed input of a supported event
raises :class:`PayloadError` with a message that names the field; unknown events and message
types are never errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_TEXT_LENGTH = 65_536
MAX_ID_LENGTH = 128
MAX_INSTANCE_LENGTH = 255
_MIN_TIMESTAMP = 946_684_800  # 2000-01-01
_MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01

GROUP_SUFFIX = "@g.us"
PHONE_SUFFIX = "@s.whatsapp.net"
LID_SUFFIX = "@lid"


class PayloadError(ValueError):
    """The body is not a valid Evolution webhook; the message names the offending field."""


@dataclass(frozen=True, slots=True)
class Envelope:
    event: str
    """Lower-case dotted event name, e.g. ``messages.upsert``."""
    instance: str
    apikey: str | None
    sender: str | None
    """The instance's own JID (``wuid``), device suffix stripped."""
    data: object


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A new message (``messages.upsert``, ``send.message``)."""

    chat_jid: str
    message_id: str
    from_me: bool
    author_name: str | None
    author_number: str | None
    """Phone digits when a phone number is known, else the LID JID."""
    sent_at: datetime
    kind: str
    """Portuguese type name (``texto``, ``audio``…) or Evolution's own for unknown types."""
    text: str | None
    is_voice_note: bool
    media_base64: str | None
    """``data.message.base64``, when the instance webhook has ``base64`` on."""
    media_key: dict[str, object] | None
    """``{key, message}`` as ``getBase64FromMediaMessage`` accepts it, for media types."""
    quoted_message_id: str | None
    seconds: int | None


@dataclass(frozen=True, slots=True)
class Reaction:
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
    deleted_at: datetime


@dataclass(frozen=True, slots=True)
class GroupsSeen:
    groups: tuple[tuple[str, str | None], ...]
    """(group JID, subject or None)."""


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    state: str


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str


Event = (
    ChatMessage
    | Reaction
    | MessageEdited
    | MessageDeleted
    | GroupsSeen
    | ConnectionChanged
    | Ignored
)

# -- envelope --------------------------------------------------------------------------------------


def normalise_event_name(name: str) -> str:
    """``MESSAGES_UPSERT``, ``messages-upsert`` and ``messages.upsert`` → ``messages.upsert``.
    ``group-participants.update`` keeps its hyphen (it is part of the enum value)."""
    lowered = name.strip().lower()
    if "." in lowered:
        return lowered
    words = re.split(r"[_\-]", lowered)
    if words[:2] == ["group", "participants"]:
        return "group-participants." + ".".join(words[2:])
    return ".".join(words)


def parse_envelope(body: object) -> Envelope:
    if not isinstance(body, dict):
        raise PayloadError("body must be a JSON object with event, instance and data")
    event = body.get("event")
    if not isinstance(event, str) or not event.strip():
        raise PayloadError('event must be a non-empty string (e.g. "messages.upsert")')
    instance = body.get("instance")
    if not isinstance(instance, str) or not instance.strip():
        raise PayloadError("instance must be a non-empty string (the Evolution instance name)")
    if len(instance) > MAX_INSTANCE_LENGTH:
        raise PayloadError(f"instance must be at most {MAX_INSTANCE_LENGTH} characters")
    if len(event) > 100:
        raise PayloadError("event must be at most 100 characters")
    apikey = body.get("apikey")
    sender = body.get("sender")
    return Envelope(
        event=normalise_event_name(event),
        instance=instance.strip(),
        apikey=apikey if isinstance(apikey, str) and apikey else None,
        sender=normalise_jid(sender) if isinstance(sender, str) and sender.strip() else None,
        data=body.get("data"),
    )


# -- events ----------------------------------------------------------------------------------------


def parse_events(envelope: Envelope, received_at: datetime) -> list[Event]:
    """The events carried by one webhook (usually one)."""
    event = envelope.event
    if event in ("messages.upsert", "send.message"):
        return [_message_event(item, envelope, received_at) for item in _items(envelope.data)]
    if event in ("messages.edited", "send.message.update"):
        return [
            _protocol_event(_object(item, "data"), received_at) for item in _items(envelope.data)
        ]
    if event == "messages.delete":
        return [_delete_event(item, received_at) for item in _items(envelope.data)]
    if event == "messages.update":
        return [_update_event(item, received_at) for item in _items(envelope.data)]
    if event in ("groups.upsert", "groups.update", "group-participants.update"):
        return [_groups_event(envelope.data)]
    if event == "connection.update":
        data = envelope.data if isinstance(envelope.data, dict) else {}
        state = data.get("state")
        return [ConnectionChanged(state if isinstance(state, str) else "unknown")]
    return [Ignored(f"unsupported event {event}")]


def _items(data: object) -> list[object]:
    if isinstance(data, list):
        if not data:
            raise PayloadError("data must not be an empty list")
        return list(data)
    return [data]


def _object(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{name} must be an object")
    return value


def _key(data: dict[str, Any], name: str = "data.key") -> tuple[dict[str, Any], str, str]:
    """The Baileys key: (key, chat JID, message id)."""
    key = _object(data.get("key"), name)
    remote = key.get("remoteJid")
    if not isinstance(remote, str) or not remote.strip():
        raise PayloadError(f"{name}.remoteJid must be a non-empty string")
    message_id = key.get("id")
    if not isinstance(message_id, str) or not message_id.strip():
        raise PayloadError(f"{name}.id must be a non-empty string")
    if len(message_id) > MAX_ID_LENGTH:
        raise PayloadError(f"{name}.id must be at most {MAX_ID_LENGTH} characters")
    from_me = key.get("fromMe", False)
    if from_me is not None and not isinstance(from_me, bool):
        raise PayloadError(f"{name}.fromMe must be a boolean")
    return key, normalise_jid(remote), message_id.strip()


# -- messages.upsert / send.message ---------------------------------------------------------------

_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)
_NOT_CONTENT = frozenset({"messageContextInfo", "senderKeyDistributionMessage"})
_KINDS = {
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
_MEDIA = frozenset(
    {
        "imageMessage",
        "videoMessage",
        "ptvMessage",
        "audioMessage",
        "documentMessage",
        "stickerMessage",
    }
)


def _unwrap(message: dict[str, Any]) -> dict[str, Any]:
    """Follow wrapper messages (``ephemeralMessage.message`` …) to the content, at most a few deep."""
    for _ in range(5):
        for wrapper in _WRAPPERS:
            inner = message.get(wrapper)
            if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
                if wrapper == "editedMessage":
                    return message  # a legacy edit: handled by the caller
                message = inner["message"]
                break
        else:
            return message
    return message


def content_type(message: dict[str, Any]) -> str | None:
    """Baileys' ``getContentType``: the first key that is ``conversation`` or ends in ``Message``."""
    for key, value in message.items():
        if key in _NOT_CONTENT or value is None:
            continue
        if key == "conversation" or key.endswith("Message"):
            return key
    return None


def _message_event(item: object, envelope: Envelope, received_at: datetime) -> Event:
    data = _object(item, "data")
    key, chat_jid, message_id = _key(data)
    raw_message = data.get("message")
    if not isinstance(raw_message, dict):
        return Ignored("no content")
    edited = raw_message.get("editedMessage")
    if isinstance(edited, dict) and isinstance(edited.get("message"), dict):
        # v1 and v2 <= 2.2.3 deliver a phone edit as an upsert wrapping a protocolMessage.
        protocol = edited["message"].get("protocolMessage")
        if isinstance(protocol, dict):
            return _protocol_event(
                protocol,
                received_at,
                fallback_at=_timestamp(data.get("messageTimestamp")),
                chat_jid=chat_jid,
            )
        return Ignored("edit without protocol message")
    message = _unwrap(raw_message)
    kind_key = content_type(message)
    if kind_key is None:
        return Ignored("no content")
    if kind_key == "protocolMessage":
        protocol = message.get("protocolMessage")
        if isinstance(protocol, dict):
            return _protocol_event(protocol, received_at, chat_jid=chat_jid)
        return Ignored("protocol message")
    content = message.get(kind_key)
    if kind_key == "reactionMessage":
        return _reaction(content, chat_jid, message_id)
    from_me = key.get("fromMe") is True
    push_name = data.get("pushName")
    base64 = raw_message.get("base64")
    seconds = content.get("seconds") if isinstance(content, dict) else None
    return ChatMessage(
        chat_jid=chat_jid,
        message_id=message_id,
        from_me=from_me,
        author_name=_clean(push_name) if isinstance(push_name, str) and push_name.strip() else None,
        author_number=_author(key, chat_jid, from_me, envelope.sender),
        sent_at=_timestamp(data.get("messageTimestamp")) or received_at,
        kind=_KINDS.get(kind_key, kind_key),
        text=_text(kind_key, content),
        is_voice_note=kind_key == "audioMessage"
        and isinstance(content, dict)
        and content.get("ptt") is True,
        media_base64=base64 if isinstance(base64, str) and base64 else None,
        media_key=(
            {"key": key, "message": {k: v for k, v in raw_message.items() if k != "base64"}}
            if kind_key in _MEDIA
            else None
        ),
        quoted_message_id=_quoted_id(data, content),
        seconds=seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else None,
    )


def _reaction(content: object, chat_jid: str, message_id: str) -> Event:
    if not isinstance(content, dict):
        return Ignored("malformed reaction")
    target = content.get("key")
    target_id = target.get("id") if isinstance(target, dict) else None
    if not isinstance(target_id, str) or not target_id:
        return Ignored("reaction without target")
    emoji = content.get("text")
    return Reaction(chat_jid, message_id, target_id, emoji if isinstance(emoji, str) else "")


def _text(kind_key: str, content: object) -> str | None:
    if kind_key == "conversation":
        return _clean(content) if isinstance(content, str) else None
    if not isinstance(content, dict):
        return None
    if kind_key == "extendedTextMessage":
        return _string(content, "text")
    if kind_key in ("imageMessage", "videoMessage", "ptvMessage", "documentMessage"):
        return _string(content, "caption")
    if kind_key.startswith("pollCreationMessage"):
        name = _string(content, "name")
        options = content.get("options")
        lines = [
            f"• {option['optionName']}"
            for option in (options if isinstance(options, list) else [])
            if isinstance(option, dict) and isinstance(option.get("optionName"), str)
        ]
        return _clean("\n".join([name or "", *lines]).strip()) or None
    if kind_key in ("locationMessage", "liveLocationMessage"):
        parts = [part for part in (_string(content, "name"), _string(content, "address")) if part]
        return _clean(" — ".join(parts)) if parts else None
    if kind_key in ("contactMessage", "contactsArrayMessage", "eventMessage"):
        return _string(content, "displayName") or _string(content, "name")
    return None


def _quoted_id(data: dict[str, Any], content: object) -> str | None:
    for context in (
        data.get("contextInfo"),
        content.get("contextInfo") if isinstance(content, dict) else None,
    ):
        if isinstance(context, dict) and isinstance(context.get("stanzaId"), str):
            return str(context["stanzaId"])
    return None


# -- edits, deletes, receipts -----------------------------------------------------------------------

_EDIT_TYPES = ("MESSAGE_EDIT", 14)
_REVOKE_TYPES = ("REVOKE", 0)


def _protocol_event(
    protocol: dict[str, Any],
    received_at: datetime,
    *,
    fallback_at: datetime | None = None,
    chat_jid: str | None = None,
) -> Event:
    """A ``protocolMessage`` (``messages.edited`` data, or the inside of a legacy edit)."""
    kind = protocol.get("type")
    if kind not in _EDIT_TYPES and kind not in _REVOKE_TYPES:
        if isinstance(protocol.get("editedMessage"), dict) and kind is None:
            kind = "MESSAGE_EDIT"
        else:
            return Ignored(f"protocol message {kind}")
    _, target_chat, target_id = _key(protocol, "data.key")
    at = _timestamp(protocol.get("timestampMs"), milliseconds=True) or fallback_at or received_at
    chat = target_chat if target_chat.endswith(GROUP_SUFFIX) or chat_jid is None else chat_jid
    if kind in _REVOKE_TYPES:
        return MessageDeleted(chat, target_id, at)
    edited = protocol.get("editedMessage")
    text = None
    if isinstance(edited, dict):
        inner = _unwrap(edited)
        kind_key = content_type(inner)
        text = _text(kind_key, inner.get(kind_key)) if kind_key else None
    return MessageEdited(chat, target_id, text, at)


def _delete_event(item: object, received_at: datetime) -> Event:
    data = _object(item, "data")
    # Deletes through the API carry the stored row, whose `id` is Evolution's own database id.
    if isinstance(data.get("key"), dict):
        _, chat_jid, message_id = _key(data)
    else:
        _, chat_jid, message_id = _key({"key": data}, "data")
    return MessageDeleted(chat_jid, message_id, received_at)


def _update_event(item: object, received_at: datetime) -> Event:
    """Receipts are ignored. ``status: DELETED`` is *not* a delete (2.3.0–2.3.4 mark edits so);
    an update that carries an edited body is an edit."""
    data = _object(item, "data")
    for holder in (data.get("update"), data):
        if not isinstance(holder, dict):
            continue
        message = holder.get("message")
        if not isinstance(message, dict):
            continue
        protocol = message.get("protocolMessage")
        edited = message.get("editedMessage")
        if isinstance(edited, dict) and isinstance(edited.get("message"), dict):
            protocol = edited["message"].get("protocolMessage")
        if isinstance(protocol, dict) and protocol.get("type") in _EDIT_TYPES:
            return _protocol_event(protocol, received_at)
    return Ignored("receipt")


def _groups_event(data: object) -> Event:
    items = data if isinstance(data, list) else [data]
    groups: list[tuple[str, str | None]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        jid = normalise_jid(item["id"])
        if not jid.endswith(GROUP_SUFFIX):
            continue
        subject = item.get("subject")
        groups.append(
            (jid, _clean(subject) if isinstance(subject, str) and subject.strip() else None)
        )
    return GroupsSeen(tuple(groups))


# -- values ----------------------------------------------------------------------------------------


def normalise_jid(jid: str) -> str:
    """Trim, lower-case and drop a ``:device`` suffix: ``5511…:75@s.whatsapp.net`` → ``5511…@s.whatsapp.net``."""
    jid = jid.strip().lower()
    user, at, domain = jid.partition("@")
    user = user.split(":", 1)[0]
    return f"{user}{at}{domain}"


def _phone_digits(jid: object) -> str | None:
    if not isinstance(jid, str) or not jid.strip():
        return None
    normalised = normalise_jid(jid)
    user, _, domain = normalised.partition("@")
    if domain in ("s.whatsapp.net", "c.us", "") and user.isdigit():
        return user
    return None


def _author(key: dict[str, Any], chat_jid: str, from_me: bool, sender: str | None) -> str | None:
    """A phone number among the sender's JIDs, else the LID (a stable identity without a phone)."""
    if chat_jid.endswith(GROUP_SUFFIX):
        candidates = [
            key.get(name) for name in ("participant", "participantAlt", "participantPn", "senderPn")
        ]
    else:
        candidates = [
            key.get(name) for name in ("remoteJid", "remoteJidAlt", "senderPn", "previousRemoteJid")
        ]
    if from_me and not any(isinstance(c, str) and c for c in candidates[:1]):
        candidates.insert(0, sender)
    for candidate in candidates:
        digits = _phone_digits(candidate)
        if digits:
            return digits
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip().lower().endswith(LID_SUFFIX):
            return normalise_jid(candidate)
    return None


def long_value(value: object) -> int | None:
    """A 64-bit integer in any of Evolution's encodings: number, decimal string, ``{low, high}``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 2**63 else None
    if isinstance(value, str):
        stripped = value.strip()
        return int(stripped) if re.fullmatch(r"-?\d{1,20}", stripped) else None
    if isinstance(value, dict):
        low, high = value.get("low"), value.get("high")
        if (
            isinstance(low, int)
            and isinstance(high, int)
            and not isinstance(low, bool)
            and not isinstance(high, bool)
        ):
            return (high << 32) + (low & 0xFFFFFFFF)
    return None


def _timestamp(value: object, *, milliseconds: bool = False) -> datetime | None:
    number = long_value(value)
    if number is None:
        return None
    seconds = number / 1000 if milliseconds or number > 100_000_000_000 else float(number)
    if not _MIN_TIMESTAMP <= seconds <= _MAX_TIMESTAMP:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _clean(value: str) -> str:
    return value.replace("\x00", "")[:MAX_TEXT_LENGTH]


def _string(content: dict[str, Any], name: str) -> str | None:
    value = content.get(name)
    return _clean(value) if isinstance(value, str) and value else None
