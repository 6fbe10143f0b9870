"""Queries about tenants: the account jobs need (the webhook path uses the cached directory),
and the plan and groups operators change from the CLI."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, TextClause, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap.db.engine import Database
from intellizap.db.models import Group, Tenant


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


_IDS_WITH_INSTANCE = text("SELECT id FROM usuarios WHERE instancia IS NOT NULL")


async def tenant_ids_with_instance(session: AsyncSession) -> list[uuid.UUID]:
    """Every tenant connected to an instance (the daily jobs over all of them)."""
    return list((await session.execute(_IDS_WITH_INSTANCE)).scalars().all())


async def all_tenants(database: Database) -> list[TenantAccount]:
    """Every tenant with an instance, by instance name (operator commands over all of them)."""
    async with database.session() as session:
        rows = (await session.execute(_ALL)).all()
    return [
        TenantAccount(id=r[0], instance=r[1], evolution_token=r[2] or None, openai_key=r[3] or None)
        for r in rows
    ]


# -- operator onboarding (``intellizap usuarios …`` / ``grupos …``) ---------------------------


class TenantExists(ValueError):
    """Another tenant already has that instance (``usuarios.instancia`` is unique)."""


class GroupLimitReached(ValueError):
    """Enabling one more group would exceed the tenant's ``max_grupos``."""

    def __init__(self, active: int, limit: int) -> None:
        super().__init__(f"{active} active groups, max_grupos = {limit}")
        self.active = active
        self.limit = limit


@dataclass(frozen=True, slots=True)
class TenantPlan:
    """A tenant's ``usuarios`` row as an operator sees it: secrets only as "set or not"."""

    id: uuid.UUID
    instance: str
    auth_id: uuid.UUID | None
    summary_time: str | None
    timezone: str | None
    transcription_enabled: bool
    monthly_token_quota: int | None
    max_groups: int | None
    quota_renewal_day: int | None
    members_can_summarize: bool
    has_openai_key: bool
    has_evolution_token: bool
    created_at: datetime
    active_groups: int = 0
    groups: int = 0


#: The columns ``usuarios add``/``set`` may write, by the Python names of ``db.models.Tenant``.
PLAN_FIELDS = frozenset(
    {
        "auth_id",
        "summary_time",
        "timezone",
        "transcription_enabled",
        "monthly_token_quota",
        "max_groups",
        "quota_renewal_day",
        "members_can_summarize",
        "language",
        "mentions_enabled",
        "owner_digest_enabled",
        "owner_number",
    }
)

# One tenant (:instance) or all of them, by instance name.
_PLANS = text(
    """
    SELECT u.id, u.instancia, u.auth_id, u."horaResumo", u.fuso_horario,
           COALESCE(u.transcricao_ativa, false), u.tokens_mes, u.max_grupos,
           u."dia-renovacao-tokens", u.resumo_membros, COALESCE(u."key-openai", '') <> '',
           COALESCE(u.evolution_token, '') <> '', u.created_at,
           (SELECT count(*) FROM grupos g WHERE g.usuario_id = u.id AND g.ativo),
           (SELECT count(*) FROM grupos g WHERE g.usuario_id = u.id)
    FROM usuarios u
    WHERE u.instancia IS NOT NULL
      AND (CAST(:instance AS text) IS NULL OR u.instancia = :instance)
    ORDER BY u.instancia
    LIMIT :limit
    """
)
_COUNT_TENANTS = text("SELECT count(*) FROM usuarios WHERE instancia IS NOT NULL")


def _plan(row: Row[Any]) -> TenantPlan:
    # The query's columns are the dataclass's fields, in order.
    return TenantPlan(*tuple(row))


def _check_fields(values: dict[str, object]) -> None:
    unknown = set(values) - PLAN_FIELDS
    if unknown:
        raise ValueError(f"not plan fields: {sorted(unknown)}")


async def create_tenant(database: Database, instance: str, values: dict[str, object]) -> uuid.UUID:
    """Insert a ``usuarios`` row for ``instance``; :class:`TenantExists` if it is taken."""
    _check_fields(values)
    statement = (
        insert(Tenant)
        .values(instance=instance, **values)
        .on_conflict_do_nothing(index_elements=["instancia"])
        .returning(Tenant.id)
    )
    async with database.session() as session:
        tenant_id = (await session.execute(statement)).scalar_one_or_none()
    if tenant_id is None:
        raise TenantExists(instance)
    return tenant_id


async def update_tenant(database: Database, instance: str, values: dict[str, object]) -> None:
    """Change plan fields of the tenant of ``instance``; :class:`TenantNotFound` if none."""
    _check_fields(values)
    statement = (
        update(Tenant).where(Tenant.instance == instance).values(**values).returning(Tenant.id)
    )
    async with database.session() as session:
        if (await session.execute(statement)).first() is None:
            raise TenantNotFound(f"no tenant with instance {instance!r}")


async def tenant_plan(database: Database, instance: str) -> TenantPlan:
    async with database.session() as session:
        row = (await session.execute(_PLANS, {"instance": instance, "limit": 1})).first()
    if row is None:
        raise TenantNotFound(f"no tenant with instance {instance!r}")
    return _plan(row)


async def tenant_plans(database: Database, *, limit: int) -> tuple[list[TenantPlan], int]:
    """The first ``limit`` tenants by instance name, and how many there are in all."""
    async with database.session() as session:
        rows = (await session.execute(_PLANS, {"instance": None, "limit": limit})).all()
        total = (await session.execute(_COUNT_TENANTS)).scalar_one()
    return [_plan(row) for row in rows], int(total)


@dataclass(frozen=True, slots=True)
class GroupSettings:
    id: uuid.UUID
    jid: str
    name: str | None
    active: bool
    summary_enabled: bool
    transcription_enabled: bool
    within_limit: bool
    """Among the tenant's oldest ``max_grupos`` active groups: only these are ingested (the
    same rule as :mod:`intellizap.tenants.directory` and the scheduler)."""
    created_at: datetime


_GROUPS = text(
    """
    SELECT g.id, g.grupo_id_externo, g.nome, COALESCE(g.ativo, false),
           COALESCE(g.resumo_ativo, false), COALESCE(g.transcricao_ativa, false),
           COALESCE(g.ativo, false) AND (u.max_grupos IS NULL OR ranked.rank <= u.max_grupos),
           g.created_at
    FROM grupos g
    JOIN usuarios u ON u.id = g.usuario_id
    LEFT JOIN (
        SELECT id, row_number() OVER (ORDER BY created_at, id) AS rank
        FROM grupos WHERE usuario_id = :tenant_id AND ativo
    ) AS ranked ON ranked.id = g.id
    WHERE g.usuario_id = :tenant_id
    ORDER BY g.ativo DESC NULLS LAST, g.nome NULLS LAST, g.grupo_id_externo
    """
)


async def group_settings(database: Database, tenant_id: uuid.UUID) -> list[GroupSettings]:
    async with database.session() as session:
        rows = (await session.execute(_GROUPS, {"tenant_id": tenant_id})).all()
    return [GroupSettings(*row) for row in rows]


_LOCK_TENANT = text("SELECT max_grupos FROM usuarios WHERE id = :tenant_id FOR UPDATE")
_GROUP_STATE = text(
    "SELECT ativo FROM grupos WHERE usuario_id = :tenant_id AND grupo_id_externo = :jid"
)
_ACTIVE_OTHERS = text(
    "SELECT count(*) FROM grupos"
    " WHERE usuario_id = :tenant_id AND ativo AND grupo_id_externo <> :jid"
)
_UPSERT_GROUP = text(
    """
    INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa)
    VALUES (:jid, :tenant_id, COALESCE(:active, false), COALESCE(:summary, false),
            COALESCE(:transcription, false))
    ON CONFLICT (usuario_id, grupo_id_externo) DO UPDATE SET
        ativo = COALESCE(:active, grupos.ativo),
        resumo_ativo = COALESCE(:summary, grupos.resumo_ativo),
        transcricao_ativa = COALESCE(:transcription, grupos.transcricao_ativa)
    RETURNING (xmax = 0) AS created
    """
)


@dataclass(frozen=True, slots=True)
class GroupChange:
    created: bool
    """The group was not known yet (never synced nor seen in a webhook)."""
    was_active: bool


async def change_group(
    database: Database,
    tenant_id: uuid.UUID,
    jid: str,
    *,
    active: bool | None,
    summary: bool | None,
    transcription: bool | None,
) -> GroupChange:
    """Set a group's flags (None: unchanged; a new group starts with everything off).

    Enabling checks ``max_grupos`` under a lock on the tenant's row, so two concurrent enables
    cannot both take the last free place. :class:`GroupLimitReached` when it is full.
    """
    params = {"tenant_id": tenant_id, "jid": jid}
    async with database.session() as session:
        limit = (await session.execute(_LOCK_TENANT, params)).scalar_one()
        was_active = bool((await session.execute(_GROUP_STATE, params)).scalar_one_or_none())
        if active and not was_active and limit is not None:
            others = int((await session.execute(_ACTIVE_OTHERS, params)).scalar_one())
            if others >= limit:
                raise GroupLimitReached(others, limit)
        created = (
            await session.execute(
                _UPSERT_GROUP,
                {**params, "active": active, "summary": summary, "transcription": transcription},
            )
        ).scalar_one()
    return GroupChange(created=bool(created), was_active=was_active)


@dataclass(frozen=True, slots=True)
class TenantGroup:
    id: uuid.UUID
    jid: str
    name: str | None
    tenant_id: uuid.UUID
    timezone: str | None


_GROUP_BY_JID = text(
    """
    SELECT g.id, g.grupo_id_externo, g.nome, u.id, u.fuso_horario
    FROM grupos g JOIN usuarios u ON u.id = g.usuario_id
    WHERE u.id = :tenant_id AND g.grupo_id_externo = :jid
    """
)


async def group_by_jid(database: Database, tenant_id: uuid.UUID, jid: str) -> TenantGroup | None:
    async with database.session() as session:
        row = (await session.execute(_GROUP_BY_JID, {"tenant_id": tenant_id, "jid": jid})).first()
    return TenantGroup(*row) if row is not None else None


#: A group's summary options (``db/models.py`` names), as ``set_group_options`` takes them.
GROUP_OPTION_FIELDS = frozenset(
    {
        "summary_destination",
        "language",
        "summary_instructions",
        "weekly_recap_day",
        "weekly_recap_time",
    }
)


async def set_group_options(
    database: Database, tenant_id: uuid.UUID, jid: str, values: dict[str, object]
) -> bool:
    """Change a group's summary options; returns whether the group exists."""
    unknown = set(values) - GROUP_OPTION_FIELDS
    if unknown:
        raise ValueError(f"not group options: {sorted(unknown)}")
    statement = (
        update(Group)
        .where(Group.tenant_id == tenant_id, Group.jid == jid)
        .values(**values)
        .returning(Group.id)
    )
    async with database.session() as session:
        return (await session.execute(statement)).first() is not None
