"""The frontend API's queries. Every one is scoped to the caller (``usuarios.auth_id``): the
backend's database role bypasses row-level security, so this is where tenants stay apart."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from intellizap.db.engine import Database


@dataclass(frozen=True, slots=True)
class Account:
    """One ``usuarios`` row of the caller (a Supabase user may own several instances)."""

    id: uuid.UUID
    instance: str


@dataclass(frozen=True, slots=True)
class OwnedGroup:
    id: uuid.UUID
    jid: str
    tenant_id: uuid.UUID
    instance: str


_ACCOUNTS = text(
    "SELECT id, instancia FROM usuarios WHERE auth_id = :auth_id AND instancia IS NOT NULL"
    " ORDER BY created_at, id"
)
_GROUP = text(
    """
    SELECT g.id, g.grupo_id_externo, u.id, u.instancia
    FROM grupos g JOIN usuarios u ON u.id = g.usuario_id
    WHERE g.id = :group_id AND u.auth_id = :auth_id
    """
)
_SUMMARY = text(
    """
    SELECT r.id, r.grupo_id, CAST(r.status AS text) AS status, r.origem, r.conteudo,
           r.total_mensagens, r.tokens_usados, r.erro, r.periodo_inicio, r.periodo_fim,
           r.data_envio, r.created_at
    FROM resumos r JOIN grupos g ON g.id = r.grupo_id
    JOIN usuarios u ON u.id = g.usuario_id AND u.id = r.usuario_id
    WHERE r.id = :id AND u.auth_id = :auth_id
    """
)


async def accounts_of(database: Database, auth_id: uuid.UUID) -> list[Account]:
    async with database.session() as session:
        rows = (await session.execute(_ACCOUNTS, {"auth_id": auth_id})).all()
    return [Account(id=row[0], instance=row[1]) for row in rows]


async def owned_group(
    database: Database, auth_id: uuid.UUID, group_id: uuid.UUID
) -> OwnedGroup | None:
    async with database.session() as session:
        row = (await session.execute(_GROUP, {"group_id": group_id, "auth_id": auth_id})).first()
    if row is None:
        return None
    return OwnedGroup(id=row[0], jid=row[1], tenant_id=row[2], instance=row[3])


async def owned_summary(
    database: Database, auth_id: uuid.UUID, summary_id: uuid.UUID
) -> dict[str, Any] | None:
    async with database.session() as session:
        row = (
            (await session.execute(_SUMMARY, {"id": summary_id, "auth_id": auth_id}))
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None
