"""A group's summary as it would be written now, with its settings or with settings the customer
is trying out: ``intellizap resumo --dry-run`` shows the prompt; the frontend's preview
(``POST /api/grupos/{id}/resumos/previa``) also makes the LLM calls and returns the text.

A preview stores nothing and sends nothing. Its calls are metered and quota-checked like a
summary's (reserved first, charged as they return, the rest given back): the preview *is* a call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from intellizap.db.engine import Database
from intellizap.llm import Completion, KeyOwner, Llm, choose_key
from intellizap.settings import Settings
from intellizap.summaries import repository
from intellizap.summaries.destinations import checked_destination
from intellizap.summaries.language import normalize_language
from intellizap.summaries.prompt import checked_instructions
from intellizap.summaries.service import Draft, draft, generate
from intellizap.tenants import quota
from intellizap.tenants.clock import tenant_zone


class InvalidPreviewSettings(ValueError):
    """A setting to try out that the group could not be saved with (the message says which)."""


class NothingToSummarize(Exception):
    """Too few messages since the last summary for one to be written."""

    def __init__(self, count: int, minimum: int) -> None:
        super().__init__(
            f"{count} messages since the last summary; a summary needs at least {minimum}"
        )
        self.count = count


@dataclass(frozen=True, slots=True)
class Trial:
    """Settings to try instead of the group's (None: the group's own)."""

    language: str | None = None
    instructions: str | None = None
    destination: str | None = None
    mentions: bool | None = None

    def checked(self) -> Trial:
        """These settings as the columns would hold them; raises
        :class:`InvalidPreviewSettings` naming what to change."""
        try:
            language = normalize_language(self.language) if self.language is not None else None
        except ValueError as exc:
            raise InvalidPreviewSettings(f"idioma: {exc}") from None
        try:
            instructions = (
                checked_instructions(self.instructions) if self.instructions is not None else None
            )
        except ValueError as exc:
            raise InvalidPreviewSettings(f"instrucoes_resumo: {exc}") from None
        try:
            destination = (
                checked_destination(self.destination) if self.destination is not None else None
            )
        except ValueError as exc:
            raise InvalidPreviewSettings(f"resumo_destino: {exc}") from None
        return replace(
            self,
            language=language or self.language,
            instructions=instructions,
            destination=destination,
        )


async def group_row(
    database: Database, group_id: uuid.UUID, trial: Trial | None = None
) -> dict[str, Any] | None:
    """The group's summary settings (with ``trial``'s instead, where given)."""
    row = await repository.group_settings(database, group_id)
    if row is None:
        return None
    if trial is not None:
        overrides = {
            "group_language": trial.language,
            "instructions": trial.instructions,
            "destination": trial.destination,
            "mentions_enabled": trial.mentions,
        }
        row.update({name: value for name, value in overrides.items() if value is not None})
    return row


@dataclass(frozen=True, slots=True)
class Preview:
    text: str
    plan: Draft
    input_tokens: int
    output_tokens: int
    calls: int


async def preview(
    database: Database,
    llm: Llm,
    settings: Settings,
    row: dict[str, Any],
    *,
    now: datetime,
) -> Preview:
    """Write the summary ``row`` (from :func:`group_row`) would get now; store and send nothing.
    Raises :class:`NothingToSummarize`, and ``quota.QuotaRefused`` / ``QuotaBusy`` and
    ``LlmError`` like a summary's calls."""
    plan = await draft(database, settings, row, now=now)
    if len(plan.lines) < max(1, settings.summary_min_messages):
        raise NothingToSummarize(len(plan.lines), max(1, settings.summary_min_messages))
    zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
    key = choose_key(row["openai_key"], settings.openai_api_key)
    account = quota.Account(row["tenant_id"], row["tokens_mes"], row["renewal_day"], zone)
    reservation = await quota.reserve(
        database, account, plan.most_tokens, platform_key=key.owner is KeyOwner.PLATFORM, now=now
    )

    async def charge(completion: Completion) -> None:
        usage = quota.Usage(completion.model, completion.input_tokens, completion.output_tokens)
        async with database.session() as session:
            await quota.charge(
                session, reservation, usage, key_owner=key.owner.value, kind="previa"
            )

    try:
        generated = await generate(llm, settings, key, row, plan, zone, charge)
    finally:
        await quota.release(database, reservation)
    return Preview(
        text=generated.text,
        plan=plan,
        input_tokens=sum(i for i, _ in generated.usage),
        output_tokens=sum(o for _, o in generated.usage),
        calls=len(generated.usage),
    )
