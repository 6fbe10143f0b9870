"""A group's summary options, read from its row and its chat: language, audience, the
customer's instructions, mentions, destination.

Every option has a default that keeps the summary every group had before options existed
(pt-BR unless the chat is clearly in another language, posted in the group, no instructions,
nobody mentioned). The columns are the frontend's to write, so a value we cannot use falls
back to that default instead of failing the summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from intellizap.summaries.destinations import Destination, destination_of
from intellizap.summaries.language import choose_language
from intellizap.summaries.mentions import participants_by_name
from intellizap.summaries.prompt import SummaryStyle


@dataclass(frozen=True, slots=True)
class Options:
    style: SummaryStyle
    destination: Destination
    participants: dict[str, str] | None
    """Who the group's text may mention; None unless the account turned mentions on (and the
    summary goes to the group)."""


@dataclass(frozen=True, slots=True)
class Speaker:
    """What options need of one chat message: its text and who wrote it."""

    text: str | None
    author_name: str | None
    author_number: str | None


def summary_options(row: Mapping[str, Any], chat: Iterable[Speaker]) -> Options:
    """The options of the summary loaded as ``row`` (see the service's ``_LOAD``: the group's and
    account's option columns) over the messages ``chat``."""
    messages = list(chat)
    destination = destination_of(
        row.get("destination"), row["grupo_id_externo"], row.get("owner_number")
    )
    mentions = bool(row.get("mentions_enabled")) and destination.in_group
    style = SummaryStyle(
        language=choose_language(
            row.get("group_language"),
            row.get("account_language"),
            (m.text for m in messages if m.text),
        ),
        audience=destination.audience,
        instructions=row.get("instructions"),
        mentions=mentions,
    )
    participants = (
        participants_by_name((m.author_name, m.author_number) for m in messages)
        if mentions
        else None
    )
    return Options(style, destination, participants)
