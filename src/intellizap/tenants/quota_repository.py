"""The quota's queries: usage metered in ``uso_tokens`` and the reservations of running calls
(``reservas_tokens``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_USAGE = text(
    """
    SELECT COALESCE(SUM(tokens_entrada + tokens_saida) FILTER (WHERE chave = 'plataforma'), 0),
           COALESCE(SUM(tokens_entrada + tokens_saida) FILTER (WHERE chave = 'propria'), 0),
           COALESCE(SUM(segundos_audio), 0)
    FROM uso_tokens WHERE usuario_id = :tenant_id AND created_at >= :since
    """
)


async def usage_since(
    session: AsyncSession, tenant_id: uuid.UUID, since: datetime
) -> tuple[int, int, float]:
    """Tokens on the platform's key, tokens on the tenant's own key, audio seconds, since
    ``since``."""
    platform, own, audio = (
        await session.execute(_USAGE, {"tenant_id": tenant_id, "since": since})
    ).one()
    return int(platform), int(own), float(audio)


_ACCOUNT = text(
    'SELECT tokens_mes, "dia-renovacao-tokens", fuso_horario FROM usuarios WHERE id = :id'
)


async def quota_settings(
    session: AsyncSession, tenant_id: uuid.UUID
) -> tuple[int | None, int | None, str | None]:
    """The tenant's monthly token limit, renewal day and time zone name."""
    limit, renewal_day, zone_name = (await session.execute(_ACCOUNT, {"id": tenant_id})).one()
    return limit, renewal_day, zone_name


_LOCK_TENANT = text("SELECT pg_advisory_xact_lock(hashtextextended(CAST(:tenant_id AS text), 11))")
_DROP_EXPIRED = text(
    "DELETE FROM reservas_tokens WHERE usuario_id = :tenant_id AND expira_em < now()"
)
# One statement, so used and reserved come from one snapshot: a call settling concurrently (its
# usage in, its reservation down, in one transaction) is seen either before or after, whole.
_USED_AND_RESERVED = text(
    """
    SELECT (SELECT COALESCE(SUM(tokens_entrada + tokens_saida), 0) FROM uso_tokens
            WHERE usuario_id = :tenant_id AND chave = 'plataforma' AND created_at >= :since),
           (SELECT COALESCE(SUM(tokens), 0) FROM reservas_tokens
            WHERE usuario_id = :tenant_id AND expira_em >= now())
    """
)
_RESERVE = text(
    """
    INSERT INTO reservas_tokens (usuario_id, tokens, expira_em)
    VALUES (:tenant_id, :tokens, now() + make_interval(secs => :ttl))
    RETURNING id
    """
)
_RECORD_USAGE = text(
    """
    INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, tokens_saida, chave, resumo_id)
    VALUES (:tenant_id, :kind, :model, :input, :output, :key_owner, :summary_id)
    """
)
_SHRINK = text(
    """
    UPDATE reservas_tokens SET tokens = GREATEST(0, tokens - :spent),
        expira_em = now() + make_interval(secs => :ttl)
    WHERE id = :id
    """
)
_RELEASE = text("DELETE FROM reservas_tokens WHERE id = :id")


async def lock_tenant_quota(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Serialise the tenant's reservations until the transaction ends."""
    await session.execute(_LOCK_TENANT, {"tenant_id": tenant_id})


async def drop_expired_reservations(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    await session.execute(_DROP_EXPIRED, {"tenant_id": tenant_id})


async def used_and_reserved(
    session: AsyncSession, tenant_id: uuid.UUID, since: datetime
) -> tuple[int, int]:
    """Platform-key tokens used since ``since`` and tokens reserved now, from one snapshot."""
    used, reserved = (
        await session.execute(_USED_AND_RESERVED, {"tenant_id": tenant_id, "since": since})
    ).one()
    return int(used), int(reserved)


async def insert_reservation(
    session: AsyncSession, tenant_id: uuid.UUID, tokens: int, *, ttl: timedelta
) -> uuid.UUID:
    reservation_id: uuid.UUID = (
        await session.execute(
            _RESERVE, {"tenant_id": tenant_id, "tokens": tokens, "ttl": ttl.total_seconds()}
        )
    ).scalar_one()
    return reservation_id


async def record_usage(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    kind: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    key_owner: str,
    summary_id: uuid.UUID | None,
) -> None:
    """Meter one LLM call (``kind``: ``uso_tokens.tipo``, e.g. ``resumo``, ``previa``)."""
    await session.execute(
        _RECORD_USAGE,
        {
            "tenant_id": tenant_id,
            "kind": kind,
            "model": model,
            "input": input_tokens,
            "output": output_tokens,
            "key_owner": key_owner,
            "summary_id": summary_id,
        },
    )


async def shrink_reservation(
    session: AsyncSession, reservation_id: uuid.UUID, *, spent: int, ttl: timedelta
) -> None:
    """Take ``spent`` tokens off the reservation and extend its life by ``ttl``."""
    await session.execute(
        _SHRINK, {"id": reservation_id, "spent": spent, "ttl": ttl.total_seconds()}
    )


async def delete_reservation(session: AsyncSession, reservation_id: uuid.UUID) -> None:
    await session.execute(_RELEASE, {"id": reservation_id})
