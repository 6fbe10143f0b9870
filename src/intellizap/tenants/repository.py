"""Queries about one tenant that jobs need (the webhook path uses the cached directory)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import TextClause, text

from intellizap.db.engine import Database


@dataclass(frozen=True, slots=True)
class TenantAccount:
    id: uuid.UUID
    instance: str
    evolution_token: str | None = field(repr=False)
    openai_key: str | None = field(repr=False)


_BY_ID = text('SELECT id, instancia, evolution_token, "key-openai" FROM usuarios WHERE id = :id')
_BY_INSTANCE = text(
    'SELECT id, instancia, evolution_token, "key-openai" FROM usuarios WHERE instancia = :instance'
)


class TenantNotFound(LookupError):
    """No tenant with that id or instance (deleted, or a typo on the command line)."""

    transient = False


async def _one(database: Database, query: TextClause, params: dict[str, object]) -> TenantAccount:
    async with database.session() as session:
        row = (await session.execute(query, params)).first()
    if row is None or not row[1]:
        raise TenantNotFound(f"no tenant with {params}")
    return TenantAccount(
        id=row[0], instance=row[1], evolution_token=row[2] or None, openai_key=row[3] or None
    )


async def tenant_by_id(database: Database, tenant_id: uuid.UUID) -> TenantAccount:
    return await _one(database, _BY_ID, {"id": tenant_id})


async def tenant_by_instance(database: Database, instance: str) -> TenantAccount:
    return await _one(database, _BY_INSTANCE, {"instance": instance})


_ALL = text(
    'SELECT id, instancia, evolution_token, "key-openai" FROM usuarios'
    " WHERE instancia IS NOT NULL AND instancia <> '' ORDER BY instancia"
)


async def all_tenants(database: Database) -> list[TenantAccount]:
    """Every tenant with an instance, by instance name (operator commands over all of them)."""
    async with database.session() as session:
        rows = (await session.execute(_ALL)).all()
    return [
        TenantAccount(id=r[0], instance=r[1], evolution_token=r[2] or None, openai_key=r[3] or None)
        for r in rows
    ]
