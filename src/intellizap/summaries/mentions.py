"""Turning the ``@Name`` a summary writes for a responsible person into a WhatsApp mention.

The model only knows names; WhatsApp notifies a person when the text carries ``@<number>`` and
the send lists that number in ``mentioned``. A name becomes a mention only when it is exactly the
display name of one person who wrote in the summarised period (case and accents aside) — the
summary derives from untrusted chat text, so it can never mention someone outside the chat, and
an ambiguous name (two people called "Ana") is left as plain text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

#: More than this many people notified by one summary is a broadcast, not a to-do list.
MAX_MENTIONS = 15

# A phone number WhatsApp can mention: 8 to 15 digits (E.164 without "+"). Longer ids (LIDs)
# cannot be mentioned through Evolution's ``mentioned`` list.
_PHONE = re.compile(r"\d{8,15}")
_WORD_CHAR = re.compile(r"\w")


@dataclass(frozen=True, slots=True)
class Mentions:
    text: str
    numbers: list[str]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def participants_by_name(people: Iterable[tuple[str | None, str | None]]) -> dict[str, str]:
    """Folded display name → number, for (name, number) pairs of people who wrote in the chat.

    Names shared by two numbers, and numbers that cannot be mentioned, are left out.
    """
    numbers: dict[str, set[str]] = {}
    for name, number in people:
        if not name or not number:
            continue
        if "@" in number and not number.endswith(("@s.whatsapp.net", "@c.us")):
            continue  # a LID ("…@lid"): its digits are not a phone number WhatsApp can mention
        digits = number.split("@", 1)[0].split(":", 1)[0]
        key = _fold(" ".join(name.split()))
        if key and _PHONE.fullmatch(digits):
            numbers.setdefault(key, set()).add(digits)
    return {key: next(iter(found)) for key, found in numbers.items() if len(found) == 1}


def apply_mentions(text: str, participants: dict[str, str]) -> Mentions:
    """``text`` with each ``@Name`` of a known participant written as ``@<number>``, and those
    numbers (at most ``MAX_MENTIONS``, in order of first appearance); any other ``@Name`` loses
    its ``@`` so the summary never looks like it mentions someone it does not."""
    names = sorted(participants, key=len, reverse=True)
    known_numbers = set(participants.values())
    out: list[str] = []
    mentioned: list[str] = []

    def mention(number: str) -> bool:
        if number not in mentioned and len(mentioned) >= MAX_MENTIONS:
            return False
        if number not in mentioned:
            mentioned.append(number)
        return True

    position = 0
    while (at := text.find("@", position)) != -1:
        out.append(text[position:at])
        rest = text[at + 1 :]
        if at > 0 and _WORD_CHAR.match(text[at - 1]):
            out.append("@")  # inside a word: an e-mail address, not a mention
            position = at + 1
            continue
        if digits := re.match(r"\d+", rest):
            # "@5511…" copied from the chat: a mention only if it is a participant's number.
            number = digits.group()
            out.append(f"@{number}" if number in known_numbers and mention(number) else number)
            position = at + 1 + len(number)
            continue
        folded = _fold(rest)
        name = next(
            (
                name
                for name in names
                if folded.startswith(name)
                and (len(folded) == len(name) or not _WORD_CHAR.match(folded[len(name)]))
            ),
            None,
        )
        if name is None:
            position = at + 1  # drop the "@", keep the name
            continue
        span = _original_span(rest, name)
        number = participants[name]
        out.append(f"@{number}" if mention(number) else rest[:span])
        position = at + 1 + span
    out.append(text[position:])
    return Mentions("".join(out), mentioned)


def _original_span(text: str, folded_name: str) -> int:
    """How many characters of ``text`` fold to ``folded_name`` (folding may change lengths)."""
    for end in range(len(folded_name), len(text) + 1):
        if _fold(text[:end]) == folded_name:
            return end
    return len(folded_name)
