"""The summaries feature's SQL for daily and on-demand summaries: the tick's sweep for orphans,
the ``resumos`` rows it writes and what it reads to write them (the group's and account's
settings, the chat of a period), and what operators and metrics read. The tick's claims are in
``claims_repository.py``, the weekly recap's and owner digest's other statements in
``rollups_repository.py``.

The legacy column names of the frontend's tables (``"nome-autor"``, ``"key-openai"``,
``"dia-renovacao-tokens"`` …) appear here and in ``db/models.py`` only; the services work with
the names these statements give them (``GROUP_SETTINGS``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap import job_repository
from intellizap.db.engine import Database

#: What a statement's ``.all()`` returns: rows of any columns.
Rows = Sequence[Row[*tuple[Any, ...]]]

#: What writing a group's summary needs of its group (``g``) and account (``u``): identity, plan,
#: key, zone and the summary options (``options.py``).
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
# The same columns for a summary not claimed yet (a preview, a dry run): no resumos row.
_GROUP = text(
    f"""
    SELECT NULL AS id, 'pendente' AS status, NULL AS conteudo, NULL AS origem,
           NULL AS periodo_inicio, NULL AS periodo_fim, NULL AS total_mensagens,
           {GROUP_SETTINGS}
    FROM grupos g JOIN usuarios u ON u.id = g.usuario_id
    WHERE g.id = :group_id
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
# Only a summary still pending changes: a repeated failure or delivery is a no-op.
_FAIL = text(
    "UPDATE resumos SET status = 'erro', erro = :reason WHERE id = :id AND status = 'pendente'"
    " RETURNING COALESCE(origem, 'agendado')"
)
_SENT = text(
    """
    UPDATE resumos SET status = 'enviado', data_envio = now(), erro = NULL
    WHERE id = :id AND status = 'pendente'
    RETURNING COALESCE(origem, 'agendado')
    """
)
_LOCK_GROUP = text("SELECT pg_advisory_xact_lock(hashtextextended(CAST(:group_id AS text), 7))")
_CLAIM_ON_DEMAND = text(
    """
    INSERT INTO resumos (grupo_id, usuario_id, status, origem)
    SELECT :group_id, :tenant_id, 'pendente', 'sob_demanda'
    WHERE NOT EXISTS (
        SELECT 1 FROM resumos
        WHERE grupo_id = :group_id AND origem = 'sob_demanda'
          AND created_at > now() - make_interval(secs => :window)
    )
    RETURNING id
    """
)
_LAST_ON_DEMAND = text(
    "SELECT max(created_at) FROM resumos WHERE grupo_id = :group_id AND origem = 'sob_demanda'"
)

# A summary not yet written (no content), old enough that its claim's own defer is long done, with
# no job waiting for it (its queueing lock) and none writing a summary of its group (the lock):
# it was claimed by a process that died before queueing it. The pending rows come from the
# partial index of migration 0006.
_NO_SUMMARY_JOB = job_repository.no_job_for(
    waiting="'summary:' || CAST(r.id AS text)",
    running="'summary-group:' || CAST(r.grupo_id AS text)",
)
_ORPHANS = text(
    f"""
    SELECT r.id, r.grupo_id, r.origem = 'semanal' AS weekly FROM resumos r
    WHERE r.status = 'pendente' AND r.conteudo IS NULL
      AND EXISTS (SELECT 1 FROM grupos g WHERE g.id = r.grupo_id AND g.usuario_id = r.usuario_id)
      AND r.created_at < now() - make_interval(secs => :settle)
      AND r.created_at > now() - interval '1 day'
      AND {_NO_SUMMARY_JOB}
    ORDER BY r.created_at
    LIMIT 1000
    """  # noqa: S608 - the f-string only inserts constant SQL
)

# The (usuario_id, …) filter walks each of the tenant's groups' (grupo_id, created_at) index.
_RECENT = text(
    """
    SELECT r.id, g.grupo_id_externo, g.nome, r.origem, CAST(r.status AS text), r.created_at,
           r.data_envio, r.total_mensagens, r.tokens_usados, r.erro
    FROM grupos g
    CROSS JOIN LATERAL (
        SELECT * FROM resumos WHERE grupo_id = g.id ORDER BY created_at DESC LIMIT :limit
    ) AS r
    WHERE g.usuario_id = :tenant_id
    ORDER BY r.created_at DESC
    LIMIT :limit
    """
)

#: Summaries claimed or requested but not written yet, by origin: how many and how long the
#: oldest has waited. Read at every metrics scrape, so it goes through the partial index of
#: migration 0006 (only the few rows still waiting); older than two days they are abandoned
#: orphans (the sweep re-queues the last day's), not a queue.
WAITING_SQL = """
    SELECT origem, count(*), EXTRACT(EPOCH FROM now() - min(created_at))
    FROM resumos
    WHERE status = 'pendente' AND conteudo IS NULL AND created_at > now() - interval '2 days'
    GROUP BY origem
"""

#: The longest failure reason kept in ``resumos.erro``.
MAX_REASON_CHARS = 500


# -- the tick's sweep ---------------------------------------------------------------------------


async def orphaned_summaries(session: AsyncSession, settle_seconds: float) -> Rows:
    """Summaries and recaps claimed but never queued: (summary id, group id, weekly)."""
    return (await session.execute(_ORPHANS, {"settle": settle_seconds})).all()


# -- writing a summary --------------------------------------------------------------------------


async def summary_to_write(session: AsyncSession, summary_id: uuid.UUID) -> RowMapping | None:
    """The summary and its group's and account's settings (``GROUP_SETTINGS``)."""
    return (await session.execute(_LOAD, {"id": summary_id})).mappings().first()


async def group_settings(database: Database, group_id: uuid.UUID) -> dict[str, Any] | None:
    """A group's settings shaped like :func:`summary_to_write`'s row, for a summary not claimed."""
    async with database.session() as session:
        found = (await session.execute(_GROUP, {"group_id": group_id})).mappings().first()
    return dict(found) if found is not None else None


async def last_sent_end(
    session: AsyncSession, group_id: uuid.UUID, summary_id: uuid.UUID | None
) -> datetime | None:
    """Where the group's last sent daily summary (other than ``summary_id``) ended."""
    end: datetime | None = (
        await session.execute(_LAST_SENT_END, {"group_id": group_id, "id": summary_id})
    ).scalar_one_or_none()
    return end


async def chat_between(
    session: AsyncSession, group_id: uuid.UUID, start: datetime, end: datetime
) -> Sequence[Row[Any]]:
    """The conversation of ``(start, end]``: (sent at, author name, author number, kind, text)."""
    return (
        await session.execute(_MESSAGES, {"group_id": group_id, "start": start, "end": end})
    ).all()


async def store_generated(
    session: AsyncSession,
    summary_id: uuid.UUID,
    *,
    content: str,
    message_count: int,
    start: datetime,
    end: datetime,
    tokens: int,
) -> None:
    await session.execute(
        _STORE,
        {
            "id": summary_id,
            "content": content,
            "count": message_count,
            "start": start,
            "end": end,
            "tokens": tokens,
        },
    )


async def mark_failed(database: Database, summary_id: uuid.UUID, reason: str) -> str | None:
    """``erro`` with ``reason``, if still pending; returns its origin if it changed, else None."""
    async with database.session() as session:
        origin: str | None = (
            await session.execute(_FAIL, {"id": summary_id, "reason": reason[:MAX_REASON_CHARS]})
        ).scalar_one_or_none()
    return origin


async def mark_sent(database: Database, summary_id: uuid.UUID) -> str | None:
    """``enviado`` now, if still pending; returns its origin if it changed, else None."""
    async with database.session() as session:
        origin: str | None = (await session.execute(_SENT, {"id": summary_id})).scalar_one_or_none()
    return origin


# -- on demand ----------------------------------------------------------------------------------


async def claim_on_demand(
    session: AsyncSession, *, group_id: uuid.UUID, tenant_id: uuid.UUID, window_seconds: float
) -> uuid.UUID | None:
    """A new on-demand summary of the group, unless one was asked for in the last
    ``window_seconds``, under a per-group lock held until the caller's transaction ends."""
    # The lock first, in a statement of its own: the check below then reads a snapshot taken
    # after the lock was granted, which includes the claim of whoever held it before. (In one
    # statement with the check, the snapshot predates the lock and concurrent requests all saw
    # "no recent summary".)
    await session.execute(_LOCK_GROUP, {"group_id": group_id})
    summary_id: uuid.UUID | None = (
        await session.execute(
            _CLAIM_ON_DEMAND,
            {"group_id": group_id, "tenant_id": tenant_id, "window": window_seconds},
        )
    ).scalar_one_or_none()
    return summary_id


async def last_on_demand_at(database: Database, group_id: uuid.UUID) -> datetime | None:
    async with database.session() as session:
        last: datetime | None = (
            await session.execute(_LAST_ON_DEMAND, {"group_id": group_id})
        ).scalar_one()
    return last


# -- for operators and metrics ------------------------------------------------------------------


async def recent_summary_rows(session: AsyncSession, tenant_id: uuid.UUID, limit: int) -> Rows:
    """The tenant's latest ``limit`` summaries across its groups, newest first: (id, group jid,
    group name, origin, status, created at, sent at, message count, tokens used, error)."""
    return (await session.execute(_RECENT, {"tenant_id": tenant_id, "limit": limit})).all()
