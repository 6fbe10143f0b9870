"""The tenant directory's queries (a tenant with its groups, as the webhook path caches it) and
the registration of the groups a tenant's number is in."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

_LOAD_TENANT = text(
    """
    SELECT u.id, u.evolution_token, u.transcricao_ativa AS transcription_enabled,
           u.max_grupos AS max_groups, u.resumo_membros AS members_can_summarize,
           g.id AS group_id, g.grupo_id_externo AS jid, g.ativo AS active,
           g.resumo_ativo AS summary_enabled, g.transcricao_ativa AS group_transcription,
           g.created_at
    FROM usuarios u
    LEFT JOIN grupos g ON g.usuario_id = u.id
    WHERE u.instancia = :instance
    """
)


async def tenant_with_groups(session: AsyncSession, instance: str) -> Sequence[RowMapping]:
    """One row per group of the instance's tenant (one row with NULL group columns when it has
    none; no row when there is no such tenant): ``id``, ``evolution_token``,
    ``transcription_enabled``, ``max_groups``, ``members_can_summarize``, ``group_id``, ``jid``,
    ``active``, ``summary_enabled``, ``group_transcription``, ``created_at``."""
    return (await session.execute(_LOAD_TENANT, {"instance": instance})).mappings().all()


_REGISTER_GROUP = text(
    """
    INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa, nome)
    VALUES (:jid, :tenant_id, false, false, false, :name)
    ON CONFLICT (usuario_id, grupo_id_externo) DO UPDATE
        SET nome = COALESCE(EXCLUDED.nome, grupos.nome)
    """
)


async def register_group(
    session: AsyncSession, tenant_id: uuid.UUID, jid: str, name: str | None
) -> None:
    """A group seen for the first time is stored inactive; a known one gets its name refreshed."""
    await session.execute(_REGISTER_GROUP, {"jid": jid, "tenant_id": tenant_id, "name": name})


_UPSERT_GROUPS = text(
    """
    INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa, nome)
    SELECT jid, :tenant_id, false, false, false, name
    FROM unnest(CAST(:jids AS varchar[]), CAST(:names AS varchar[])) AS g (jid, name)
    ON CONFLICT (usuario_id, grupo_id_externo) DO UPDATE
        SET nome = COALESCE(EXCLUDED.nome, grupos.nome)
    RETURNING (xmax = 0) AS inserted
    """
)


async def upsert_groups(
    session: AsyncSession, tenant_id: uuid.UUID, *, jids: list[str], names: list[str | None]
) -> int:
    """Register many groups at once, as :func:`register_group`; returns how many were new."""
    inserted = await session.execute(
        _UPSERT_GROUPS, {"tenant_id": tenant_id, "jids": jids, "names": names}
    )
    return sum(1 for (was_inserted,) in inserted if was_inserted)
