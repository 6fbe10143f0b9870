"""Writing one group summary: period, transcript, quota, LLM (map-reduce when long), delivery.

A ``resumos`` row goes ``pendente`` (claimed) → ``pendente`` with content (generated, being sent)
→ ``enviado`` (``delivery.py``, once the send ledger confirms its last part) or ``erro`` with the
reason. A job re-run after a crash continues from where the row is: a generated summary is not
generated (nor paid for) twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import procrastinate
from sqlalchemy import text

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.evolution.sending import queue_text
from intellizap.llm import ApiKey, KeyOwner, Llm, choose_key
from intellizap.logging import get_logger
from intellizap.settings import Settings
from intellizap.summaries.chunking import chunk_lines
from intellizap.summaries.delivery import on_delivery
from intellizap.summaries.prompt import (
    build_merge_messages,
    build_partial_messages,
    build_summary_messages,
)
from intellizap.summaries.tokens import count_tokens
from intellizap.summaries.transcript import ChatLine, render_transcript
from intellizap.tenants.clock import tenant_zone
from intellizap.tenants.quota import QUOTA_EXCEEDED, quota_status

log = get_logger(__name__)

COMMAND = "/resumo"

_LOAD = text(
    """
    SELECT r.id, r.status, r.conteudo, r.origem, r.periodo_inicio, r.periodo_fim, r.total_mensagens,
           g.id AS group_id, g.grupo_id_externo, g.nome,
           u.id AS tenant_id, u.instancia, u.fuso_horario, u."key-openai" AS openai_key,
           u.tokens_mes, u."dia-renovacao-tokens" AS renewal_day
    FROM resumos r JOIN grupos g ON g.id = r.grupo_id
    JOIN usuarios u ON u.id = g.usuario_id AND u.id = r.usuario_id -- the account owning the group
    WHERE r.id = :id
    """
)
_LAST_SENT_END = text(
    """
    SELECT max(periodo_fim) FROM resumos
    WHERE grupo_id = :group_id AND status = 'enviado' AND id <> :id
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
_RECORD_USAGE = text(
    """
    INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, tokens_saida, chave, resumo_id)
    VALUES (:tenant_id, 'resumo', :model, :input, :output, :key_owner, :summary_id)
    """
)
_STORE = text(
    """
    UPDATE resumos SET conteudo = :content, total_mensagens = :count, periodo_inicio = :start,
        periodo_fim = :end, tokens_usados = :tokens, erro = NULL
    WHERE id = :id AND status = 'pendente'
    """
)
_FAIL = text("UPDATE resumos SET status = 'erro', erro = :reason WHERE id = :id")


class SummaryRefused(Exception):
    """A summary that must not be made (quota, invalid key…): recorded as ``erro``, not retried."""

    transient = False


@dataclass(frozen=True, slots=True)
class Draft:
    """What a summary would send to the LLM (``--dry-run`` prints it)."""

    start: datetime
    end: datetime
    lines: list[str]
    messages: list[dict[str, str]]
    prompt_tokens: int
    chunks: int


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
    zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
    end = row["periodo_fim"] or now
    async with database.session() as session:
        last_end = (
            await session.execute(_LAST_SENT_END, {"group_id": row["group_id"], "id": row["id"]})
        ).scalar_one_or_none()
        earliest = end - timedelta(hours=settings.summary_max_window_hours)
        start = max(last_end, earliest) if last_end else earliest
        rows = (
            await session.execute(
                _MESSAGES, {"group_id": row["group_id"], "start": start, "end": end}
            )
        ).all()
    lines = render_transcript(
        (
            ChatLine(sent_at=r[0], author_name=r[1], author_number=r[2], kind=r[3], text=r[4])
            for r in rows
        ),
        zone,
    )
    label = period_label(start, end, zone)
    messages = build_summary_messages(group_name=row["nome"], period=label, lines=lines)
    tokens = sum(count_tokens(message["content"]) for message in messages)
    chunks = 1
    if tokens > settings.summary_input_token_budget:
        chunks = len(chunk_lines(lines, _chunk_budget(settings)))
    return Draft(start, end, lines, messages, tokens, chunks)


def _chunk_budget(settings: Settings) -> int:
    # Leave room for the instructions around each chunk.
    return max(1_000, settings.summary_input_token_budget - 2_000)


async def generate(
    llm: Llm, settings: Settings, key: ApiKey, row: Any, plan: Draft, zone: ZoneInfo
) -> Generated:
    """One call when the transcript fits the budget; otherwise map (one partial summary per
    chunk, every message in exactly one chunk) and reduce (merge the partials)."""
    model = settings.summary_model
    result = Generated(text="", model=model)

    async def call(messages: list[dict[str, str]]) -> str:
        completion = await llm.complete(
            key, model=model, messages=messages, max_tokens=settings.summary_max_output_tokens
        )
        result.model = completion.model
        result.usage.append((completion.input_tokens, completion.output_tokens))
        return completion.text

    if plan.chunks == 1:
        result.text = await call(plan.messages)
        return result
    label = period_label(plan.start, plan.end, zone)
    chunks = chunk_lines(plan.lines, _chunk_budget(settings))
    partials = [
        await call(
            build_partial_messages(
                group_name=row["nome"], period=label, part=n, parts=len(chunks), lines=chunk
            )
        )
        for n, chunk in enumerate(chunks, start=1)
    ]
    result.text = await call(
        build_merge_messages(group_name=row["nome"], period=label, partials=partials)
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
    async with database.session() as session:
        row = (await session.execute(_LOAD, {"id": summary_id})).mappings().first()
    if row is None or row["status"] != "pendente":
        return "skipped"
    if row["conteudo"]:
        await _deliver(database, queue, settings, row, row["conteudo"])  # generated before a crash
        return "resent"
    zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
    plan = await draft(database, settings, row, now=now)
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
    if key.owner is KeyOwner.PLATFORM:
        quota = await quota_status(
            database,
            tenant_id=row["tenant_id"],
            limit=row["tokens_mes"],
            renewal_day=row["renewal_day"],
            zone=zone,
            now=now,
        )
        if quota.exceeded:
            raise SummaryRefused(QUOTA_EXCEEDED)
    generated = await generate(llm, settings, key, row, plan, zone)
    async with database.session() as session:
        for input_tokens, output_tokens in generated.usage:
            await session.execute(
                _RECORD_USAGE,
                {
                    "tenant_id": row["tenant_id"],
                    "model": generated.model,
                    "input": input_tokens,
                    "output": output_tokens,
                    "key_owner": key.owner.value,
                    "summary_id": summary_id,
                },
            )
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
    await _deliver(database, queue, settings, row, generated.text, start=plan.start, end=plan.end)
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
    content: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """Queue the summary's send; ``delivery.py`` marks it sent once the last part is confirmed.
    A re-run after a crash queues the very same text (the period comes from the row), so the
    send ledger recognises it and sends nothing twice."""
    start = start or row["periodo_inicio"]
    end = end or row["periodo_fim"]
    heading = "📝 *Resumo do grupo*"
    if start is not None and end is not None:
        zone = tenant_zone(row["fuso_horario"], settings.default_timezone)
        heading += f" ({period_label(start, end, zone)})"
    await queue_text(
        queue,
        database,
        tenant_id=row["tenant_id"],
        number=row["grupo_id_externo"],
        text=f"{heading}\n\n{content}",
        max_chars=settings.send_max_chars,
        key=f"summary:{row['id']}",
        on_done=on_delivery(row["id"]),
    )


async def fail(database: Database, summary_id: uuid.UUID, reason: str) -> None:
    async with database.session() as session:
        await session.execute(_FAIL, {"id": summary_id, "reason": reason[:500]})


# -- on demand ----------------------------------------------------------------------------------------

_CLAIM_ON_DEMAND = text(
    """
    WITH guard AS (SELECT pg_advisory_xact_lock(hashtextextended(CAST(:group_id AS text), 7)))
    INSERT INTO resumos (grupo_id, usuario_id, status, origem)
    SELECT :group_id, :tenant_id, 'pendente', 'sob_demanda' FROM guard
    WHERE NOT EXISTS (
        SELECT 1 FROM resumos
        WHERE grupo_id = :group_id AND origem = 'sob_demanda'
          AND created_at > now() - make_interval(secs => :window)
    )
    RETURNING id
    """
)


async def request_on_demand(
    database: Database,
    queue: procrastinate.App,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
) -> uuid.UUID | None:
    """Queue a summary since the last one, unless one was asked for in the last
    ``SUMMARY_ON_DEMAND_MINUTES`` (then None)."""
    async with database.session() as session:
        summary_id = (
            await session.execute(
                _CLAIM_ON_DEMAND,
                {
                    "group_id": group_id,
                    "tenant_id": tenant_id,
                    "window": settings.summary_on_demand_minutes * 60,
                },
            )
        ).scalar_one_or_none()
    if summary_id is not None:
        await jobs.defer(
            queue,
            "summarize",
            queueing_lock=f"summary:{summary_id}",
            lock=f"summary-group:{group_id}",
            args={"summary_id": str(summary_id)},
        )
    return summary_id


_LAST_ON_DEMAND = text(
    "SELECT max(created_at) FROM resumos WHERE grupo_id = :group_id AND origem = 'sob_demanda'"
)


async def on_demand_available_at(
    database: Database, settings: Settings, group_id: uuid.UUID
) -> datetime:
    """When the group may next be summarised on demand (now, or in the past, when it may)."""
    async with database.session() as session:
        last: datetime | None = (
            await session.execute(_LAST_ON_DEMAND, {"group_id": group_id})
        ).scalar_one()
    if last is None:
        return datetime.now(UTC)
    return last + timedelta(minutes=settings.summary_on_demand_minutes)
