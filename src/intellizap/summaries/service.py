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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap.db.engine import Database
from intellizap.llm import ApiKey, Completion, KeyOwner, Llm, choose_key
from intellizap.logging import get_logger
from intellizap.settings import Settings
from intellizap.summaries.chunking import chunk_lines
from intellizap.summaries.delivery import on_delivery
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

#: What writing a group's summary needs of its group (``g``) and account (``u``): identity, plan,
#: key, zone and the summary options (``options.py``). The preview reads the same.
GROUP_SETTINGS = """
    g.id AS group_id, g.grupo_id_externo, g.nome, g.resumo_destino AS destination,
    g.idioma AS group_language, g.instrucoes_resumo AS instructions,
    u.id AS tenant_id, u.instancia, u.fuso_horario, u."key-openai" AS openai_key,
    u.tokens_mes, u."dia-renovacao-tokens" AS renewal_day,
    u.idioma AS account_language, u.mencoes_ativas AS mentions_enabled,
    u.numero_dono AS owner_number
"""
_LOAD = text(
    f"""
    SELECT r.id, r.status, r.conteudo, r.origem, r.periodo_inicio, r.periodo_fim, r.total_mensagens,
           {GROUP_SETTINGS}
    FROM resumos r JOIN grupos g ON g.id = r.grupo_id
    JOIN usuarios u ON u.id = g.usuario_id AND u.id = r.usuario_id -- the account owning the group
    WHERE r.id = :id
    """  # noqa: S608 - the f-string only inserts a constant column list
)
_LAST_SENT_END = text(
    """
    SELECT max(periodo_fim) FROM resumos
    WHERE grupo_id = :group_id AND status = 'enviado' AND origem <> 'semanal'
      AND id IS DISTINCT FROM CAST(:id AS uuid)  -- NULL: a preview, not a claimed summary
    """
)
# Deleted messages are left out, edits already carry their final text, voice notes their
# transcript; messages the backend itself sent and the /resumo command are not conversation.
_MESSAGES = text(
    """
    SELECT m.data_mensagem, m."nome-autor", m."numero-autor", m.tipo, m.mensagem
    FROM mensagens m
    WHERE m.grupo_id = :group_id
      AND m.data_mensagem > :start AND m.data_mensagem <= :end
      AND m.apagada_em IS NULL AND m.tipo IS NOT NULL
      AND lower(btrim(COALESCE(m.mensagem, ''))) <> '/resumo'
      AND NOT EXISTS (SELECT 1 FROM mensagens_enviadas e WHERE e.id_externo = m.id_externo)
    ORDER BY m.data_mensagem, m.id_externo
    """
)
_STORE = text(
    """
    UPDATE resumos SET conteudo = :content, total_mensagens = :count, periodo_inicio = :start,
        periodo_fim = :end, tokens_usados = :tokens, erro = NULL
    WHERE id = :id AND status = 'pendente'
    """
)
_FAIL = text(
    "UPDATE resumos SET status = 'erro', erro = :reason WHERE id = :id AND status = 'pendente'"
)


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
    last_end = (
        await session.execute(_LAST_SENT_END, {"group_id": row["group_id"], "id": row["id"]})
    ).scalar_one_or_none()
    earliest = end - timedelta(hours=settings.summary_max_window_hours)
    start = max(last_end, earliest) if last_end else earliest
    rows = (
        await session.execute(_MESSAGES, {"group_id": row["group_id"], "start": start, "end": end})
    ).all()
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
        row = (await session.execute(_LOAD, {"id": summary_id})).mappings().first()
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
            await session.execute(
                _STORE,
                {
                    "id": summary_id,
                    "content": generated.text,
                    "count": len(plan.lines),
                    "start": plan.start,
                    "end": plan.end,
                    "tokens": generated.tokens,
                },
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
    async with database.session() as session:
        await session.execute(_FAIL, {"id": summary_id, "reason": reason[:500]})
