"""Cutting a long text into WhatsApp messages of bounded length, at the most natural places."""

from __future__ import annotations


def split_text(
    text: str, limit: int, separators: tuple[str, ...] = ("\n\n", "\n", " ")
) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at paragraph boundaries, else at
    line, else at word boundaries; only a single word longer than ``limit`` is cut hard."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    if not separators:
        return [text[start : start + limit] for start in range(0, len(text), limit)]
    separator, finer = separators[0], separators[1:]
    parts: list[str] = []
    current = ""
    for piece in text.split(separator):
        candidate = f"{current}{separator}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = ""
        if len(piece) <= limit:
            current = piece
        else:
            parts.extend(split_text(piece, limit, finer))
    if current:
        parts.append(current)
    return [part.strip() for part in parts if part.strip()]
