"""Render stored group messages as compact, one-line-per-message transcript text for the LLM.

Each message becomes ``"HH:MM Name: text"`` in the tenant's time zone. The format is chosen for
token economy: no dates (the period is given once in the prompt header), no phone numbers when a
name is known, no JSON. Text is cleaned of control and invisible characters, flattened to a single
line and capped, so one message can never break the line structure or flood the prompt.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

UNKNOWN_AUTHOR = "Alguém"
ELLIPSIS = "…"
LINE_BREAK = " / "
MAX_NAME_CHARS = 40

# Kind (as stored, plus accented / English aliases) -> tag shown before the text. ``None`` means
# plain text without a tag.
_TAGS: dict[str, str | None] = {
    "texto": None,
    "text": None,
    "audio": "[áudio]",
    "áudio": "[áudio]",
    "imagem": "[imagem]",
    "image": "[imagem]",
    "video": "[vídeo]",
    "vídeo": "[vídeo]",
    "documento": "[documento]",
    "document": "[documento]",
    "figurinha": "[figurinha]",
    "sticker": "[figurinha]",
    "enquete": "[enquete]",
    "poll": "[enquete]",
    "localizacao": "[localização]",
    "localização": "[localização]",
    "location": "[localização]",
    "contato": "[contato]",
    "contact": "[contato]",
    # The shapes of docs/message-types.md beyond the common ones. A button or list reply is what
    # the person answered: plain text, like anything they typed.
    "resposta": None,
    "interativa": "[botões]",
    "convite": "[convite]",
    "evento": "[evento]",
    "chamada": "[chamada]",
    "pagamento": "[pagamento]",
    "produto": "[produto]",
    "pedido": "[pedido]",
}

# Kinds shown by their tag alone when they carry no text (a photo without a caption still tells
# the reader that something was shared). Stickers without text are noise and are dropped.
_TAG_ALONE = frozenset(
    {
        "[áudio]",
        "[imagem]",
        "[vídeo]",
        "[documento]",
        "[enquete]",
        "[localização]",
        "[contato]",
        "[convite]",
        "[evento]",
        "[chamada]",
        "[pagamento]",
        "[produto]",
        "[pedido]",
    }
)

# Line and paragraph separators: each becomes a visible " / " inside the single output line.
_NEWLINES = re.compile(r"\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ChatLine:
    """One stored group message, reduced to what the summary needs."""

    sent_at: datetime
    author_name: str | None
    author_number: str | None
    kind: str
    text: str | None


def _clean_segment(segment: str) -> str:
    """Drop control, format (zero-width, bidi, tag) and surrogate characters; collapse spaces.

    Unassigned code points are kept: emoji newer than this Python's Unicode tables are ``Cn``.
    """
    kept: list[str] = []
    for char in segment:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            # Tabs and other control whitespace separate words: keep a space, not nothing.
            if char.isspace():
                kept.append(" ")
            continue
        kept.append(char)
    return _SPACES.sub(" ", "".join(kept)).strip()


def clean_text(text: str) -> str:
    """``text`` on one line: invisible/control characters removed, newlines as ``" / "``."""
    segments = (_clean_segment(part) for part in _NEWLINES.split(text))
    return LINE_BREAK.join(part for part in segments if part)


def _cap(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters at a word boundary, adding ``"…"``."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    if not text[max_chars].isspace():
        boundary = cut.rfind(" ")
        # Only back off to a space if that keeps most of the text (long URLs have no spaces).
        if boundary >= max_chars // 2:
            cut = cut[:boundary]
    cut = cut.rstrip()
    if cut.endswith(LINE_BREAK.rstrip()):
        cut = cut[: -len(LINE_BREAK.rstrip())].rstrip()
    return cut + ELLIPSIS


def _author(line: ChatLine) -> str:
    for candidate in (line.author_name, line.author_number):
        if candidate:
            name = _cap(clean_text(candidate).replace(LINE_BREAK, " "), MAX_NAME_CHARS)
            if name:
                return name
    return UNKNOWN_AUTHOR


def _local_time(sent_at: datetime, tz: ZoneInfo) -> str:
    if sent_at.tzinfo is None:  # defensive: stored timestamps are UTC
        sent_at = sent_at.replace(tzinfo=UTC)
    return sent_at.astimezone(tz).strftime("%H:%M")


def render_line(line: ChatLine, tz: ZoneInfo, *, max_chars: int = 600) -> str | None:
    """``"HH:MM Name: text"`` for one message, or ``None`` when it carries nothing to summarise."""
    kind = line.kind.strip().lower()
    text = _cap(clean_text(line.text), max_chars) if line.text else ""
    if kind in _TAGS:
        tag = _TAGS[kind]
        if tag is None:
            body = text
        elif text:
            body = f"{tag} {text}"
        else:
            body = tag if tag in _TAG_ALONE else ""
    else:
        body = text  # unknown kind: its text, if any, without a tag
    if not body:
        return None
    return f"{_local_time(line.sent_at, tz)} {_author(line)}: {body}"


def render_transcript(
    lines: Iterable[ChatLine], tz: ZoneInfo, *, max_chars: int = 600
) -> list[str]:
    """Rendered lines in the given order, skipping messages that render to nothing."""
    rendered = (render_line(line, tz, max_chars=max_chars) for line in lines)
    return [text for text in rendered if text is not None]
