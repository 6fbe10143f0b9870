"""Where a summary goes: the group, the account owner's private chat, or both.

``grupos.resumo_destino`` chooses (``grupo`` by default, as before the option existed). The
owner's chat is ``usuarios.numero_dono``. The summary's status follows its *primary* send — the
group's for ``grupo`` and ``ambos``, the owner's for ``dono`` — through the completion task the
caller names; the owner's copy of an ``ambos`` summary is a courtesy copy, sent exactly once like
every message but not waited for.

Mentions only make sense where the mentioned people are: with mentions on, the group's text
carries them (``@<number>`` and Evolution's ``mentioned``) and the owner's copy the plain names;
with mentions off, the text goes as the model wrote it, as before the option existed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import procrastinate

from intellizap.db.engine import Database
from intellizap.evolution.send_ledger import Completion
from intellizap.evolution.sending import queue_text
from intellizap.logging import get_logger
from intellizap.summaries.mentions import Mentions, apply_mentions
from intellizap.summaries.prompt import AUDIENCE_GROUP, AUDIENCE_OWNER

log = get_logger(__name__)

GROUP = "grupo"
OWNER = "dono"
BOTH = "ambos"
KINDS = (GROUP, OWNER, BOTH)


class UnknownDestination(ValueError):
    """A destination to store that is none of :data:`KINDS`."""


def checked_destination(value: str) -> str:
    """``value`` as ``grupos.resumo_destino`` holds it; raises :class:`UnknownDestination`."""
    name = value.strip().lower()
    if name not in KINDS:
        raise UnknownDestination(
            f"{value!r} is not a destination: use {', '.join(KINDS[:-1])} or {KINDS[-1]}"
        )
    return name


#: What the tenant reads in ``erro`` when a summary for the owner has nowhere to go.
NO_OWNER_NUMBER = (
    "o resumo vai para o chat particular do dono, mas a conta não tem numero_dono: "
    "cadastre o número (com DDI e DDD, só dígitos) ou mude o destino do grupo"
)


class NoOwnerNumber(Exception):
    """The summary is for the owner's private chat and the account has no ``numero_dono``."""

    transient = False

    def __init__(self) -> None:
        super().__init__(NO_OWNER_NUMBER)


@dataclass(frozen=True, slots=True)
class Destination:
    kind: str
    group_jid: str
    owner_number: str | None

    @property
    def audience(self) -> str:
        """Who reads the summary first (the prompt is written for them)."""
        return AUDIENCE_OWNER if self.kind == OWNER else AUDIENCE_GROUP

    @property
    def in_group(self) -> bool:
        return self.kind in (GROUP, BOTH)


def destination_of(kind: str | None, group_jid: str, owner_number: str | None) -> Destination:
    """The destination a group's settings name; an unknown value (the frontend writes the
    column; the database checks it, an older copy might not) is the group, as before."""
    normalized = (kind or GROUP).strip().lower()
    return Destination(normalized if normalized in KINDS else GROUP, group_jid, owner_number)


@dataclass(frozen=True, slots=True)
class Letter:
    """A text to deliver: what the group reads and what the owner reads (the heading differs:
    the owner's names the group), and who the group's text may mention."""

    group_text: str
    owner_text: str
    participants: dict[str, str] | None
    """Folded display name → number of the people who may be mentioned; None: mentions off."""


async def deliver(
    queue: procrastinate.App,
    database: Database,
    *,
    tenant_id: uuid.UUID,
    destination: Destination,
    letter: Letter,
    max_chars: int,
    key: str,
    on_done: Completion,
) -> None:
    """Queue ``letter`` to ``destination``; ``on_done`` follows the primary send. Raises
    :class:`NoOwnerNumber` (before anything is queued) when only the owner could receive it.
    Queueing the same ``key`` again sends nothing twice."""
    if destination.kind == OWNER and not destination.owner_number:
        raise NoOwnerNumber()
    owner_text = letter.owner_text
    if letter.participants is not None:
        owner_text = apply_mentions(owner_text, {}).text  # names, no "@": nobody to notify
    if destination.in_group:
        group = Mentions(letter.group_text, [])
        if letter.participants is not None:
            group = apply_mentions(letter.group_text, letter.participants)
        await queue_text(
            queue,
            database,
            tenant_id=tenant_id,
            number=destination.group_jid,
            text=group.text,
            max_chars=max_chars,
            key=key,
            on_done=on_done,
            mentions=group.numbers,
        )
    if destination.kind == OWNER or (destination.kind == BOTH and destination.owner_number):
        assert destination.owner_number is not None
        primary = destination.kind == OWNER
        await queue_text(
            queue,
            database,
            tenant_id=tenant_id,
            number=destination.owner_number,
            text=owner_text,
            max_chars=max_chars,
            key=key if primary else f"{key}:dono",
            on_done=on_done if primary else None,
        )
    elif destination.kind == BOTH:
        log.warning(
            "summary for the group and its owner: the account has no numero_dono, "
            "sent to the group only",
            usuario_id=str(tenant_id),
        )
