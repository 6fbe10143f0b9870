"""Value coercion: Evolution's encodings of strings, ids, names, 64-bit numbers and instants.

Required fields raise :class:`~intellizap.evolution.payloads.events.PayloadError` naming the
field, never echoing its value; optional ones become ``None`` when unusable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

from intellizap.evolution.payloads.events import PayloadError

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

_UNSAFE_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATES: Final = re.compile(r"[\ud800-\udfff]")
_DECIMAL: Final = re.compile(r"[+-]?[0-9]{1,20}(?:\.[0-9]{0,9})?")

Object: TypeAlias = dict[str, object]


class Missing:
    """Marks a field that is absent (as opposed to ``null``) in error messages."""


MISSING: Final = Missing()


def describe(value: object) -> str:
    """The JSON type of a value, for error messages (never the value itself)."""
    if isinstance(value, Missing):
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


def require_object(value: object, path: str) -> Object:
    if not isinstance(value, dict):
        raise PayloadError(f"{path} must be an object ({describe(value)})")
    return value


def require_text(value: object, path: str, limit: int, *, what: str | None = None) -> str:
    """A non-blank string of at most ``limit`` characters, without control characters;
    ``what`` says in the error what the field should hold."""
    if not isinstance(value, str):
        raise PayloadError(f"{_expected(path, what)} ({describe(value)})")
    text = value.strip()
    if not text:
        raise PayloadError(f"{_expected(path, what)} (got a blank string)")
    if len(text) > limit:
        raise PayloadError(f"{path} must be at most {limit} characters (got {len(text)})")
    if _UNSAFE_CHARS.search(text):
        raise PayloadError(f"{path} must not contain control characters")
    return text


def _expected(path: str, what: str | None) -> str:
    return f"{path} must be a non-empty string" + (f", {what}" if what else "")


def optional_id(value: object) -> str | None:
    """A message id where one is optional: invalid → None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_ID_LENGTH or _UNSAFE_CHARS.search(text):
        return None
    return text


def clean(text: str) -> str:
    """Without NUL characters (PostgreSQL refuses them) and lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def optional_text(value: object) -> str | None:
    """A message text: cleaned and capped; non-strings and blank texts → None."""
    if not isinstance(value, str):
        return None
    text = clean(value[: MAX_TEXT_LENGTH * 2])[:MAX_TEXT_LENGTH]
    return text if text.strip() else None


def joined(parts: Sequence[str | None], separator: str = "\n") -> str | None:
    """The usable parts (see :func:`optional_text`) joined; None when there are none."""
    kept = [part for part in parts if part]
    return optional_text(separator.join(kept)) if kept else None


def name(value: object) -> str | None:
    """A display name (pushName, group subject): stripped, capped; blank → None."""
    if not isinstance(value, str):
        return None
    text = clean(value[: MAX_NAME_LENGTH * 2]).strip()[:MAX_NAME_LENGTH]
    return text or None


def long(value: object) -> int | None:
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


def instant(value: object) -> datetime | None:
    """A timestamp in seconds or milliseconds (told apart by magnitude), any encoding; None when
    absent or absurd (before 2000 or from 2100 on)."""
    number = long(value)
    if number is None or number <= 0:
        return None
    seconds, milliseconds = divmod(number, 1000) if number > _MILLISECONDS_ABOVE else (number, 0)
    if not _MIN_SECONDS <= seconds < _MAX_SECONDS:
        return None
    at = datetime.fromtimestamp(seconds, UTC)
    return at + timedelta(milliseconds=milliseconds) if milliseconds else at
