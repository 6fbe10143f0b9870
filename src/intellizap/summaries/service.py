"""Writing one group summary: period, transcript, quota, LLM (map-reduce when long), delivery.

A ``resumos`` row goes ``pendente`` (claimed) → ``pendente`` with content (generated, being sent)
→ ``enviado`` (``delivery.py``, once the send ledger confirms its last part) or ``erro`` with the
reason. A job re-run after a crash continues from where the row is: a generated summary is not
generated (nor paid for) twice.

On the platform key, the summary first reserves its worst-case tokens (every call's prompt plus
its maximum output) of the tenant's monthly quota; each call's real usage is recorded as soon as
it returns, and what was not spent is given back at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap.db.engine import Database
from intellizap.llm import ApiKey, Completion, KeyOwner, Llm, choose_key
from intellizap.logging import get_logger
from intellizap.settings import Settings
from intellizap.summaries import repository
from intellizap.summaries.chunking import chunk_lines
from intellizap.summaries.delivery import on_delivery, record_failure
from intellizap.summaries.destinations import Letter, NoOwnerNumber, deliver
from intellizap.summaries.options import Options, Speaker, summary_options
from intellizap.summaries.prompt import (
    build_merge_messages,
    build_partial_messages,
    build_summary_messages,
)
from intellizap.summaries.tokens import count_tokens
from intellizap.summaries.transcript import ChatLine, render_transcript
from intellizap.summaries.wording import DAILY, heading
from intellizap.tenants import quota
from intellizap.tenants.clock import tenant_zone

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Draft:
    """What a summary would send to the LLM (``--dry-run`` prints it)."""

    start: datetime
    end: datetime
    lines: list[str]
    messages: list[dict[str, str]]
    prompt_tokens: int
    chunks: int
    most_tokens: int
    """What every call together may spend at worst (prompts plus maximum outputs): reserved
    from the quota before the first call."""
    options: Options


@dataclass(slots=True)
class Generated:
    text: str
    model: str
    usage: list[tuple[int, int]] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(a + b for a, b in self.usage)


def period_label(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    fmt = "%d/%m %H:%M"
    return f"{start.astimezone(zone).strftime(fmt)} a {end.astimezone(zone).strftime(fmt)}"


async def draft(database: Database, settings: Settings, row: Any, *, now: datetime) -> Draft:
    """The period, transcript and prompt of a summary, without calling the LLM."""
    async with database.session() as session:
        conversation = await _conversation(session, settings, row, now=now)
    return _plan(settings, row, conversation)


@dataclass(frozen=True, slots=True)
class _Conversation:
    start: datetime
    end: datetime
    rows: list[Any]


async def _conversation(
    session: AsyncSession, settings: Settings, row: Any, *, now: datetime
) -> _Conversation:
    """The period a summary covers and the messages in it."""
    end = row["periodo_fim"] or now
    last_end = await repository.last_sent_end(session, row["group_id"], row["id"])
    earliest = end - timedelta(hours=settings.summary_max_window_hours)
    start = max(last_end, earliest) if last_end else earliest
    rows = await repository.chat_between(session, row["group_id"], start, end)
    return _Conversation(start, end, list(rows))


def _plan(settings: Settings, row: Any, conversation: _Conversation) -> Draft:
    zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
    start, end = conversation.start, conversation.end
    chat = [
        ChatLine(sent_at=r[0], author_name=r[1], author_number=r[2], kind=r[3], text=r[4])
        for r in conversation.rows
    ]
    lines = render_transcript(chat, zone)
    options = summary_options(row, (Speaker(c.text, c.author_name, c.author_number) for c in chat))
    style = options.style
    label = period_label(start, end, zone)
    messages = build_summary_messages(
        group_name=row["nome"], period=label, lines=lines, style=style
    )
    tokens = _prompt_tokens(messages)
    output = settings.summary_max_output_tokens
    chunks, most = 1, tokens + output
    if tokens > settings.summary_input_token_budget:
        chunks = len(chunk_lines(lines, _chunk_budget(settings)))
        # Each partial call repeats the instructions around its chunk and may answer in full;
        # the merge reads every partial and answers once more.
        framing = _prompt_tokens(
            build_summary_messages(group_name=row["nome"], period=label, lines=[], style=style)
        )
        most = tokens + chunks * framing + 2 * chunks * output + output
    return Draft(start, end, lines, messages, tokens, chunks, most, options)


def _prompt_tokens(messages: list[dict[str, str]]) -> int:
    return sum(count_tokens(message["content"]) for message in messages)


def _chunk_budget(settings: Settings) -> int:
    # Leave room for the instructions around each chunk.
    return max(1_000, settings.summary_input_token_budget - 2_000)


Charge = Callable[[Completion], Awaitable[None]]


async def generate(
    llm: Llm,
    settings: Settings,
    key: ApiKey,
    row: Any,
    plan: Draft,
    zone: ZoneInfo,
    charge: Charge | None = None,
) -> Generated:
    """One call when the transcript fits the budget; otherwise map (one partial summary per
    chunk, every message in exactly one chunk) and reduce (merge the partials). ``charge`` is
    awaited after every call, with what the provider billed."""
    model = settings.summary_model
    result = Generated(text="", model=model)

    async def call(messages: list[dict[str, str]], prompt_tokens: int | None = None) -> str:
        completion = await llm.complete(
            key,
            model=model,
            messages=messages,
            max_tokens=settings.summary_max_output_tokens,
            input_tokens=_prompt_tokens(messages) if prompt_tokens is None else prompt_tokens,
        )
        result.model = completion.model
        result.usage.append((completion.input_tokens, completion.output_tokens))
        if charge is not None:
            await charge(completion)
        return completion.text

    if plan.chunks == 1:
        result.text = await call(plan.messages, plan.prompt_tokens)
        return result
    label = period_label(plan.start, plan.end, zone)
    chunks = chunk_lines(plan.lines, _chunk_budget(settings))
    style = plan.options.style
    partials = [
        await call(
            build_partial_messages(
                group_name=row["nome"],
                period=label,
                part=n,
                parts=len(chunks),
                lines=chunk,
                style=style,
            )
        )
        for n, chunk in enumerate(chunks, start=1)
    ]
    result.text = await call(
        build_merge_messages(group_name=row["nome"], period=label, partials=partials, style=style)
    )
    return result


async def summarize(
    database: Database,
    llm: Llm,
    settings: Settings,
    queue: procrastinate.App,
    summary_id: uuid.UUID,
    *,
    now: datetime,
) -> str:
    conversation = None
    async with database.session() as session:  # one transaction to read all it needs
        row = await repository.summary_to_write(session, summary_id)
        if row is not None and row["status"] == "pendente":
            conversation = await _conversation(session, settings, row, now=now)
    if row is None or conversation is None or row["origem"] == "semanal":
        return "skipped"  # gone, done, or a weekly recap (``recap.py`` writes those)
    zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
    plan = _plan(settings, row, conversation)
    if row["conteudo"]:  # generated before a crash: the same text again, the ledger sends it once
        await _deliver(database, queue, settings, row, plan, row["conteudo"])
        return "resent"
    if len(plan.lines) < settings.summary_min_messages:
        reason = (
            f"apenas {len(plan.lines)} mensagens no período (mínimo {settings.summary_min_messages});"
            " nada enviado"
        )
        await fail(database, summary_id, reason)
        log.info(
            "summary not sent: too few messages",
            grupo_id=str(row["group_id"]),
            mensagens=len(plan.lines),
        )
        return "too_few"
    key = choose_key(row["openai_key"], settings.openai_api_key)
    account = quota.Account(row["tenant_id"], row["tokens_mes"], row["renewal_day"], zone)
    reservation = await quota.reserve(
        database,
        account,
        plan.most_tokens,
        platform_key=key.owner is KeyOwner.PLATFORM,
        now=now,
    )

    async def charge(session: AsyncSession, model: str, input_tokens: int, output: int) -> None:
        usage = quota.Usage(model, input_tokens, output)
        await quota.charge(
            session, reservation, usage, key_owner=key.owner.value, summary_id=summary_id
        )

    async def charge_now(completion: Completion) -> None:
        async with database.session() as session:
            await charge(
                session, completion.model, completion.input_tokens, completion.output_tokens
            )

    # A long day's calls are each recorded as they return (a crash halfway loses no usage); a
    # single call is recorded with the summary it wrote, in one transaction.
    try:
        generated = await generate(
            llm, settings, key, row, plan, zone, charge_now if plan.chunks > 1 else None
        )
        async with database.session() as session:
            if plan.chunks == 1:
                for input_tokens, output_tokens in generated.usage:
                    await charge(session, generated.model, input_tokens, output_tokens)
            await repository.store_generated(
                session,
                summary_id,
                content=generated.text,
                message_count=len(plan.lines),
                start=plan.start,
                end=plan.end,
                tokens=generated.tokens,
            )
            await quota.settle(session, reservation)
    except BaseException:
        await quota.release(database, reservation)
        raise
    await _deliver(database, queue, settings, row, plan, generated.text)
    log.info(
        "summary generated",
        grupo_id=str(row["group_id"]),
        mensagens=len(plan.lines),
        partes=plan.chunks,
        tokens_usados=generated.tokens,
    )
    return "generated"


async def _deliver(
    database: Database,
    queue: procrastinate.App,
    settings: Settings,
    row: Any,
    plan: Draft,
    content: str,
) -> None:
    """Queue the summary's send; ``delivery.py`` marks it sent once the primary send is
    confirmed. A re-run after a crash queues the very same text (the period comes from the row),
    so the send ledger recognises it and sends nothing twice."""
    zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
    start = row["periodo_inicio"] or plan.start
    end = row["periodo_fim"] or plan.end
    period = period_label(start, end, zone)
    language = plan.options.style.language
    name = row["nome"] or row["grupo_id_externo"]
    letter = Letter(
        group_text=f"{heading(DAILY, language, period=period)}\n\n{content}",
        owner_text=f"{heading(DAILY, language, group_name=name, period=period)}\n\n{content}",
        participants=plan.options.participants,
    )
    try:
        await deliver(
            queue,
            database,
            tenant_id=row["tenant_id"],
            destination=plan.options.destination,
            letter=letter,
            max_chars=settings.send_max_chars,
            key=f"summary:{row['id']}",
            on_done=on_delivery(row["id"]),
        )
    except NoOwnerNumber as exc:
        await fail(database, row["id"], str(exc))


async def fail(database: Database, summary_id: uuid.UUID, reason: str) -> None:
    """The summary ends ``erro`` with ``reason`` (what the tenant reads), if still pending."""
    await record_failure(database, summary_id, reason)
