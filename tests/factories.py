"""Small row factories for tests."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.db.models import Group, Tenant


async def create_tenant(
    database: Database, instance: str = "acme-support", **values: Any
) -> Tenant:
    """A tenant with no daily summary hour unless ``summary_time`` is given: a test running a
    real worker must not find a scheduled summary due because of the hour it runs at."""
    tenant = Tenant(instance=instance, transcription_enabled=False, **values)
    async with database.session() as session:
        session.add(tenant)
    return tenant


async def create_group(
    database: Database,
    tenant: Tenant,
    jid: str = "120363401234567890@g.us",
    *,
    active: bool = True,
    **values: Any,
) -> Group:
    group = Group(
        jid=jid,
        tenant_id=tenant.id,
        active=active,
        summary_enabled=values.pop("summary_enabled", False),
        transcription_enabled=values.pop("transcription_enabled", False),
        **values,
    )
    async with database.session() as session:
        session.add(group)
    return group


async def messages_of(database: Database, group_id: uuid.UUID) -> list[dict[str, Any]]:
    async with database.session() as session:
        rows = await session.execute(
            text(
                'SELECT id_externo, mensagem, "nome-autor" AS autor, "numero-autor" AS numero, '
                "data_mensagem, tipo, enviada_por_mim, editada_em, apagada_em "
                "FROM mensagens WHERE grupo_id = :g ORDER BY data_mensagem, id_externo"
            ),
            {"g": group_id},
        )
        return [dict(row) for row in rows.mappings()]


async def count(database: Database, sql: str, **params: Any) -> int:
    async with database.session() as session:
        value = (await session.execute(text(sql), params)).scalar_one()
    return int(value)
