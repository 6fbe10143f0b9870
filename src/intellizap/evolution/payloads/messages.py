"""New messages: ``messages.upsert`` and ``send.message`` data → chat lines and reactions.

A message carrying a ``protocolMessage`` (v1 and Evolution ≤ 2.2 upsert edits and revokes) is
handed to :mod:`~intellizap.evolution.payloads.changes`.
"""

from __future__ import annotations

from datetime import datetime

from intellizap.evolution.payloads.changes import protocol_event
from intellizap.evolution.payloads.content import CHAT_LINES, NOT_CHAT_LINES, Content, unwrap
from intellizap.evolution.payloads.events import ChatMessage, Event, Ignored, Reaction
from intellizap.evolution.payloads.keys import MessageKey, author_number, parse_key
from intellizap.evolution.payloads.values import (
    MAX_NAME_LENGTH,
    MISSING,
    Object,
    clean,
    instant,
    name,
    optional_id,
    require_object,
)


def message_event(item: object, path: str, sender: str | None, received_at: datetime) -> Event:
    """One message's data: ``{key, pushName, message, messageTimestamp…}``."""
    data = require_object(item, path)
    key = parse_key(data.get("key", MISSING), f"{path}.key")
    raw_message = data.get("message")
    if not isinstance(raw_message, dict):
        return Ignored("no content")
    content = unwrap(raw_message, f"{path}.message")
    if content is None:
        return Ignored("no content")
    sent_at = instant(data.get("messageTimestamp"))
    kind = content.type
    if kind == "protocolMessage":
        if not isinstance(content.value, dict):
            return Ignored("protocol message")
        return protocol_event(
            content.value, content.path, received_at, chat_jid=key.chat_jid, fallback_at=sent_at
        )
    if content.via_edit:
        return Ignored("edit without target")
    if kind == "reactionMessage":
        return _reaction(content.value, key)
    reason = NOT_CHAT_LINES.get(kind)
    if reason is not None:
        return Ignored(reason)
    return _chat_message(data, raw_message, key, content, sender, sent_at or received_at)


def _chat_message(
    data: Object,
    raw_message: Object,
    key: MessageKey,
    content: Content,
    sender: str | None,
    sent_at: datetime,
) -> ChatMessage:
    known = CHAT_LINES.get(content.type)
    media_base64 = raw_message.get("base64")
    media_key: dict[str, object] | None = None
    if known is not None and known.media:
        media_key = {
            "key": dict(key.raw),
            "message": {field: value for field, value in raw_message.items() if field != "base64"},
        }
    return ChatMessage(
        chat_jid=key.chat_jid,
        message_id=key.message_id,
        from_me=key.from_me,
        author_name=name(data.get("pushName")),
        author_number=author_number(key, sender),
        sent_at=sent_at,
        kind=known.tipo if known is not None else content.type,
        text=known.text(content.value) if known is not None else None,
        media_base64=media_base64 if isinstance(media_base64, str) and media_base64 else None,
        media_key=media_key,
    )


def _reaction(value: object, key: MessageKey) -> Event:
    if not isinstance(value, dict):
        return Ignored("malformed reaction")
    target = value.get("key")
    target_id = optional_id(target.get("id")) if isinstance(target, dict) else None
    if target_id is None:
        return Ignored("malformed reaction")
    emoji = value.get("text")
    return Reaction(
        chat_jid=key.chat_jid,
        message_id=key.message_id,
        target_message_id=target_id,
        emoji=clean(emoji)[:MAX_NAME_LENGTH] if isinstance(emoji, str) else "",
    )
