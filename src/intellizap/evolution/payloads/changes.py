"""Edits, deletes and updates: where Evolution's version churn lands (reference §3.1 – 3.3).

- ``messages.edited`` (v2) and ``send.message.update``: the raw ``protocolMessage`` —
  ``MESSAGE_EDIT`` or (2.3.0+) ``REVOKE`` and other protocol types;
- ``messages.upsert`` of v1 / v2 ≤ 2.2: the same ``protocolMessage`` as a message's content,
  possibly inside ``editedMessage``;
- ``messages.delete``: the deleted message's key, or (deletes through the API) the stored row;
- ``messages.update``: receipts (ignored, ``DELETED`` included: on 2.3.0 – 2.3.4 that is an
  *edit*), and on ≤ 2.2 edits without a status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias

from intellizap.evolution.payloads.content import MAX_WRAPPER_DEPTH, WRAPPERS, text_of, unwrap
from intellizap.evolution.payloads.events import (
    Event,
    Ignored,
    MessageDeleted,
    MessageEdited,
    PayloadError,
)
from intellizap.evolution.payloads.keys import parse_key
from intellizap.evolution.payloads.values import MISSING, Object, instant, require_object

_Action: TypeAlias = Literal["edit", "revoke"]


def protocol_action(protocol: Object) -> _Action | None:
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


def protocol_event(
    protocol: Object,
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
    action = protocol_action(protocol)
    if action is None:
        return Ignored("protocol message")
    target = parse_key(protocol.get("key", MISSING), f"{path}.key")
    at = instant(protocol.get("timestampMs")) or fallback_at or received_at
    chat = chat_jid or target.chat_jid
    if action == "revoke":
        return MessageDeleted(chat_jid=chat, message_id=target.message_id, deleted_at=at)
    return MessageEdited(
        chat_jid=chat,
        message_id=target.message_id,
        text=edited_text(protocol.get("editedMessage")),
        edited_at=at,
    )


def edited_text(edited: object) -> str | None:
    """The new text of an edit: ``{conversation}``, ``{extendedTextMessage}``, a caption…"""
    if not isinstance(edited, dict):
        return None
    content = unwrap(edited, "")
    inner = edited.get("message")
    if content is None and isinstance(inner, dict):
        content = unwrap(inner, "")
    if content is None or content.via_edit:
        return None
    return text_of(content)


def delete_event(item: object, path: str, received_at: datetime) -> Event:
    """``messages.delete``: the deleted message's Baileys key, or (deletes through the API) the
    stored row, whose ``id`` is Evolution's database id and whose ``key`` is the message key."""
    data = require_object(item, path)
    row_key = data.get("key")
    key = parse_key(data, path) if row_key is None else parse_key(row_key, f"{path}.key")
    at = instant(data.get("timestampMs")) or received_at
    return MessageDeleted(chat_jid=key.chat_jid, message_id=key.message_id, deleted_at=at)


def update_event(item: object, path: str, received_at: datetime) -> Event:
    """``messages.update``: receipts are ignored, including ``status: DELETED`` (in 2.3.0–2.3.4
    that marks an *edit*, reference §3.1). An update that carries an edited body is an edit."""
    data = require_object(item, path)
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


def _edit_body(message: Object) -> tuple[Object | None, object] | None:
    """(the edit's protocolMessage if any, the new content) when ``message`` carries an edit."""
    for _ in range(MAX_WRAPPER_DEPTH):
        protocol = message.get("protocolMessage")
        if isinstance(protocol, dict):
            if protocol_action(protocol) != "edit":
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


def _unwrap_once(message: Object) -> Object | None:
    """The ``.message`` of the first wrapper (``ephemeralMessage`` …) in ``message``, if any."""
    for field, wrapper in message.items():
        if field in WRAPPERS and isinstance(wrapper, dict):
            inner = wrapper.get("message")
            if isinstance(inner, dict):
                return inner
    return None


def _update_edit(
    found: tuple[Object | None, object], data: Object, update: object, received_at: datetime
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
            target = parse_key(candidate, "key")
        except PayloadError:
            continue
        at = (instant(protocol.get("timestampMs")) if protocol else None) or received_at
        return MessageEdited(
            chat_jid=target.chat_jid,
            message_id=target.message_id,
            text=edited_text(edited),
            edited_at=at,
        )
    return Ignored("edit without target")
