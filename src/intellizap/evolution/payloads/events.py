"""The typed events a webhook body becomes: what the rest of the backend sees of Evolution."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeAlias


class PayloadError(ValueError):
    """The body is not a valid Evolution webhook; the message names the offending field and
    never contains its value."""


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
    """``key.remoteJid`` normalised (see :func:`normalise_jid`); a valid ``…@g.us`` for groups."""
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
    """Portuguese type name (``texto``, ``audio``…, docs/message-types.md) or the raw content
    key for types WhatsApp added after that table."""
    text: str | None
    """What a member of the group reads in it (text, caption, file name, options…)."""
    media_base64: str | None
    """``data.message.base64``, when the instance webhook has ``base64`` on."""
    media_key: dict[str, object] | None
    """``{key, message}`` as ``getBase64FromMediaMessage`` accepts it, for media types."""


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
    """(group JID, subject or None), each valid group once."""
    invalid: int = 0
    """Items whose id ends in ``@g.us`` but is not a valid group JID (left out)."""


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    state: str
    """Lower-case: ``open``, ``close``, ``connecting``, ``refused``…"""


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str
    """Short and machine-friendly, e.g. ``receipt`` or ``unsupported event qrcode.updated``."""


INVALID_GROUP_JID: Final = "invalid group JID"
"""The reason of an event whose chat ends in ``@g.us`` but is no valid group JID."""

Event: TypeAlias = (
    ChatMessage
    | Reaction
    | MessageEdited
    | MessageDeleted
    | GroupsSeen
    | ConnectionChanged
    | Ignored
)
