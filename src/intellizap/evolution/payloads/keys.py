"""Message keys, JIDs and authors: which chat, which message, who wrote it.

JID forms (reference §2.2): ``5511…@s.whatsapp.net`` (phone), ``…@lid`` (privacy id),
``…@g.us`` (group), ``status@broadcast``; any of the user forms may carry a ``:device`` suffix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from intellizap.evolution.payloads.events import PayloadError
from intellizap.evolution.payloads.values import (
    MAX_ID_LENGTH,
    MAX_JID_LENGTH,
    MISSING,
    Object,
    describe,
    require_object,
    require_text,
)

MAX_GROUP_JID_LENGTH: Final = 56
_GROUP_JID: Final = re.compile(r"[0-9]{1,25}(?:-[0-9]{1,25})?@g\.us")
_PHONE: Final = re.compile(r"[0-9]{5,20}")
_LID_USER: Final = re.compile(r"[0-9]{1,32}")
_UNSAFE_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class InvalidGroupJid(Exception):
    """A key names a chat ending in ``@g.us`` that is not a group JID: its event is ignored
    (:data:`~intellizap.evolution.payloads.events.INVALID_GROUP_JID`), never stored."""


def normalise_jid(jid: str) -> str:
    """Trim, lower-case and drop a ``:device`` suffix from the user part:
    ``5511…:75@s.whatsapp.net`` → ``5511…@s.whatsapp.net``."""
    user, at, domain = jid.strip().lower().partition("@")
    if ":" in user:
        user = user.split(":", 1)[0]
    return f"{user}{at}{domain}"


def is_group_jid(jid: str) -> bool:
    """``digits@g.us`` or (older groups, creator-timestamp) ``digits-digits@g.us``, at most
    :data:`MAX_GROUP_JID_LENGTH` characters. The one test of a group id wherever one enters."""
    return len(jid) <= MAX_GROUP_JID_LENGTH and _GROUP_JID.fullmatch(jid) is not None


def optional_jid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    jid = normalise_jid(value)
    if not jid or len(jid) > MAX_JID_LENGTH or _UNSAFE_CHARS.search(jid):
        return None
    return jid


@dataclass(frozen=True, slots=True)
class MessageKey:
    raw: Object
    chat_jid: str
    message_id: str
    from_me: bool


def parse_key(value: object, path: str) -> MessageKey:
    """A Baileys message key: ``{remoteJid, id, fromMe?, participant?…}``.

    Raises :class:`PayloadError` when malformed and :class:`InvalidGroupJid` when the chat looks
    like a group but is not one.
    """
    key = require_object(value, path)
    remote = require_text(key.get("remoteJid", MISSING), f"{path}.remoteJid", MAX_JID_LENGTH)
    chat_jid = normalise_jid(remote)
    if chat_jid.endswith("@g.us") and not is_group_jid(chat_jid):
        raise InvalidGroupJid(path)
    if not chat_jid or chat_jid[0] == "@":
        raise PayloadError(
            f"{path}.remoteJid must be a JID like 1203…@g.us or 5511…@s.whatsapp.net"
        )
    message_id = require_text(key.get("id", MISSING), f"{path}.id", MAX_ID_LENGTH)
    from_me = key.get("fromMe")
    if from_me is not None and from_me is not True and from_me is not False:
        raise PayloadError(f"{path}.fromMe must be true or false ({describe(from_me)})")
    return MessageKey(raw=key, chat_jid=chat_jid, message_id=message_id, from_me=from_me is True)


_GROUP_AUTHOR_FIELDS: Final = ("participant", "participantAlt", "participantPn", "senderPn")
_PRIVATE_AUTHOR_FIELDS: Final = ("remoteJid", "remoteJidAlt", "senderPn", "previousRemoteJid")


def author_number(key: MessageKey, sender: str | None) -> str | None:
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
        number = phone_number(candidate)
        if number is not None:
            return number
    for candidate in candidates:
        found = lid(candidate)
        if found is not None:
            return found
    return None


def phone_number(value: object) -> str | None:
    """``5511…[:device]@s.whatsapp.net`` (or ``@c.us``, or bare digits) → ``5511…``."""
    if not isinstance(value, str):
        return None
    user, at, domain = normalise_jid(value).partition("@")
    if at and domain not in ("s.whatsapp.net", "c.us"):
        return None
    return user if _PHONE.fullmatch(user) else None


def lid(value: object) -> str | None:
    """``2098…[:device]@lid`` → ``2098…@lid``."""
    if not isinstance(value, str):
        return None
    user, _, domain = normalise_jid(value).partition("@")
    return f"{user}@lid" if domain == "lid" and _LID_USER.fullmatch(user) else None
