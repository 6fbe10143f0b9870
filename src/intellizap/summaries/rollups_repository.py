"""The SQL of the weekly recap and the owner's daily digest: the sweep for their orphans, what
their jobs read, and how their rows end (a recap fails and is sent as a daily summary is,
through ``repository.py``). Their claims are the tick's, in ``claims_repository.py``.

A recap is a ``resumos`` row with ``origem = 'semanal'`` (at most one per group and week: the
partial unique index of migration 0010); a digest is a ``resumos_dono`` row (at most one per
account and local day: its unique key).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap import job_repository
from intellizap.db.engine import Database
from intellizap.summaries.repository import GROUP_SETTINGS, MAX_REASON_CHARS, Rows

# Digests claimed before their job existed (only a hand-made row now: claims queue their job in
# their own transaction), with no job waiting for them and none running for the account.
_NO_DIGEST_JOB = job_repository.no_job_for(
    waiting="'digest:' || CAST(d.id AS text)",
    running="'digest-account:' || CAST(d.usuario_id AS text)",
)
_DIGEST_ORPHANS = text(
    f"""
    SELECT d.id, d.usuario_id FROM resumos_dono d
    WHERE d.status = 'pendente' AND d.conteudo IS NULL
      AND d.created_at < now() - make_interval(secs => :settle)
      AND d.created_at > now() - interval '1 day'
      AND {_NO_DIGEST_JOB}
    ORDER BY d.created_at
    LIMIT 1000
    """  # noqa: S608 - the f-string only inserts constant SQL
)

# -- the recap's job ------------------------------------------------------------------------------

_RECAP_LOAD = text(
    f"""
    SELECT r.id, r.status, r.conteudo, r.origem, r.data_referencia AS day, r.created_at,
           r.periodo_inicio, r.periodo_fim, {GROUP_SETTINGS}
    FROM resumos r JOIN grupos g ON g.id = r.grupo_id
    JOIN usuarios u ON u.id = g.usuario_id AND u.id = r.usuario_id
    WHERE r.id = :id
    """  # noqa: S608 - the f-string only inserts a constant column list
)

#: At most this many summaries of a week go into a recap (on-demand ones add to the dailies).
MAX_RECAP_SUMMARIES = 21

# The week's summaries people received: scheduled and on-demand ones (whose day is the local day
# their period ended), never the raw chat and never an earlier recap. The latest are kept.
_WEEK_SUMMARIES = text(
    """
    SELECT * FROM (
        SELECT COALESCE(r.data_referencia, CAST(r.periodo_fim AT TIME ZONE :zone AS date)) AS day,
               r.conteudo, r.periodo_inicio, r.periodo_fim, r.total_mensagens, r.created_at
        FROM resumos r
        WHERE r.grupo_id = :group_id AND r.status = 'enviado'
          AND r.origem IN ('agendado', 'sob_demanda')
          AND r.conteudo IS NOT NULL AND btrim(r.conteudo) <> ''
          AND COALESCE(r.data_referencia, CAST(r.periodo_fim AT TIME ZONE :zone AS date))
              BETWEEN :first AND :last
        ORDER BY 1 DESC, COALESCE(r.periodo_fim, r.created_at) DESC
        LIMIT :limit
    ) AS week
    ORDER BY day, COALESCE(periodo_fim, created_at)
    """
)
_DAILY_BEING_WRITTEN = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM resumos
        WHERE grupo_id = :group_id AND origem = 'agendado' AND data_referencia = :day
          AND status = 'pendente'
    )
    """
)
_RECAP_STORE = text(
    """
    UPDATE resumos SET conteudo = :content, total_mensagens = :count, periodo_inicio = :start,
        periodo_fim = :end, tokens_usados = :tokens, erro = NULL
    WHERE id = :id AND status = 'pendente'
    """
)

# -- the digest's job -----------------------------------------------------------------------------

_DIGEST_LOAD = text(
    """
    SELECT d.id, d.status, d.conteudo, d.data_referencia AS day, d.total_grupos,
           u.id AS tenant_id, u.fuso_horario, u."key-openai" AS openai_key, u.tokens_mes,
           u."dia-renovacao-tokens" AS renewal_day, u.idioma AS account_language,
           u.numero_dono AS owner_number, u.max_grupos
    FROM resumos_dono d JOIN usuarios u ON u.id = d.usuario_id
    WHERE d.id = :id
    """
)
# The groups the account has summarised (active, summaries on, within max_grupos: the daily
# claim's ranking), each with its scheduled summary of the day, if any.
_DIGEST_GROUPS = text(
    """
    SELECT g.nome, g.grupo_id_externo, CAST(r.status AS text) AS status, r.conteudo
    FROM (
        SELECT id, nome, grupo_id_externo, resumo_ativo,
               row_number() OVER (ORDER BY created_at, id) AS rank
        FROM grupos WHERE usuario_id = :tenant_id AND ativo
    ) AS g
    LEFT JOIN resumos r
        ON r.grupo_id = g.id AND r.origem = 'agendado' AND r.data_referencia = :day
    WHERE r.id IS NOT NULL
       OR (g.resumo_ativo AND (CAST(:max_groups AS integer) IS NULL OR g.rank <= :max_groups))
    ORDER BY g.rank
    """
)
_DIGEST_STORE = text(
    """
    UPDATE resumos_dono SET conteudo = :content, total_grupos = :groups, tokens_usados = :tokens,
        erro = NULL
    WHERE id = :id AND status = 'pendente'
    """
)
_DIGEST_FAIL = text(
    "UPDATE resumos_dono SET status = 'erro', erro = :reason WHERE id = :id AND status = 'pendente'"
)
# Only a digest still waiting for its delivery changes: a repeated completion is a no-op.
_DIGEST_SENT = text(
    """
    UPDATE resumos_dono SET status = 'enviado', data_envio = now(), erro = NULL
    WHERE id = :id AND status = 'pendente'
    """
)


# -- the tick's sweep -----------------------------------------------------------------------------


async def orphaned_digests(session: AsyncSession, settle_seconds: float) -> Rows:
    """Owner digests claimed but never queued: (digest id, tenant id)."""
    return (await session.execute(_DIGEST_ORPHANS, {"settle": settle_seconds})).all()


# -- the recap's job ------------------------------------------------------------------------------


async def recap_to_write(session: AsyncSession, summary_id: uuid.UUID) -> RowMapping | None:
    """The recap, its day and its group's and account's settings (``GROUP_SETTINGS``)."""
    return (await session.execute(_RECAP_LOAD, {"id": summary_id})).mappings().first()


async def week_summaries(
    session: AsyncSession, *, group_id: uuid.UUID, zone: str, first: date, last: date
) -> list[dict[str, Any]]:
    """The summaries the group received from ``first`` to ``last`` (local days of ``zone``), at
    most ``MAX_RECAP_SUMMARIES``, in day order."""
    params = {
        "group_id": group_id,
        "zone": zone,
        "first": first,
        "last": last,
        "limit": MAX_RECAP_SUMMARIES,
    }
    return [dict(r) for r in (await session.execute(_WEEK_SUMMARIES, params)).mappings()]


async def daily_being_written(session: AsyncSession, group_id: uuid.UUID, day: date) -> bool:
    """Whether the group's scheduled summary of ``day`` is still pending."""
    waiting: bool = (
        await session.execute(_DAILY_BEING_WRITTEN, {"group_id": group_id, "day": day})
    ).scalar_one()
    return waiting


async def store_recap(
    session: AsyncSession,
    summary_id: uuid.UUID,
    *,
    content: str,
    message_count: int,
    start: datetime | None,
    end: datetime | None,
    tokens: int,
) -> None:
    """The recap's text, if still pending; its period spans its summaries' (NULL without any)."""
    await session.execute(
        _RECAP_STORE,
        {
            "id": summary_id,
            "content": content,
            "count": message_count,
            "start": start,
            "end": end,
            "tokens": tokens,
        },
    )


# -- the digest's job -----------------------------------------------------------------------------


async def digest_to_write(session: AsyncSession, digest_id: uuid.UUID) -> RowMapping | None:
    """The digest, its day and its account's settings."""
    return (await session.execute(_DIGEST_LOAD, {"id": digest_id})).mappings().first()


async def digest_groups(
    session: AsyncSession, *, tenant_id: uuid.UUID, day: date, max_groups: int | None
) -> Sequence[RowMapping]:
    """The account's summarised groups in the daily claim's order: (nome, grupo_id_externo,
    status, conteudo) of each one's scheduled summary of ``day`` (NULL without one)."""
    params = {"tenant_id": tenant_id, "day": day, "max_groups": max_groups}
    return (await session.execute(_DIGEST_GROUPS, params)).mappings().all()


async def store_digest(
    session: AsyncSession, digest_id: uuid.UUID, *, content: str, group_count: int, tokens: int
) -> None:
    await session.execute(
        _DIGEST_STORE,
        {"id": digest_id, "content": content, "groups": group_count, "tokens": tokens},
    )


async def mark_digest_failed(database: Database, digest_id: uuid.UUID, reason: str) -> bool:
    """``erro`` with ``reason``, if still pending; returns whether it changed."""
    async with database.session() as session:
        result = await session.execute(
            _DIGEST_FAIL, {"id": digest_id, "reason": reason[:MAX_REASON_CHARS]}
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_digest_sent(database: Database, digest_id: uuid.UUID) -> bool:
    """``enviado`` now, if still pending; returns whether it changed."""
    async with database.session() as session:
        result = await session.execute(_DIGEST_SENT, {"id": digest_id})
    return bool(result.rowcount)  # type: ignore[attr-defined]
