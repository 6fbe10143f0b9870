"""Group metadata sync: Evolution's fetchAllGroups → grupos, from events and from the CLI."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.engine import Database
from tests.conftest import (
    load_fixture,
    make_settings,
    run_cli,
    running_service,
    wait_until,
    webhook_headers,
)
from tests.factories import create_group, create_tenant
from tests.fakes.evolution import FakeEvolution

KNOWN = "120363401234567890@g.us"
NEW = "120363409876543210@g.us"


async def groups_of(database: Database) -> dict[str, tuple[str | None, bool]]:
    async with database.session() as session:
        rows = await session.execute(text("SELECT grupo_id_externo, nome, ativo FROM grupos"))
        return {row[0]: (row[1], row[2]) for row in rows}


@pytest.mark.parametrize("event", ["connection.update.json", "group-participants.update.json"])
async def test_connection_open_and_group_events_sync_group_names(
    clean_database: Database, database_url: str, evolution: FakeEvolution, event: str
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    await create_group(clean_database, tenant, KNOWN)  # active, no name yet
    settings = make_settings(
        database_url,
        evolution_api_url=evolution.url,
        evolution_api_key="evolution-global-key-123456",
        job_poll_seconds=0.2,
    )
    async with running_service(settings, Roles(worker=True)) as client:
        response = await client.post(
            "/webhooks/evolution",
            json=load_fixture(event),
            headers=webhook_headers(),
        )
        assert response.status_code == 200

        async def synced() -> bool:
            return len(await groups_of(clean_database)) == 2

        await wait_until(synced, within=20)
    assert await groups_of(clean_database) == {
        KNOWN: ("Equipe Vendas", True),  # named, still active
        NEW: ("Clientes VIP", False),  # new groups are recorded inactive
    }
    [call] = evolution.group_calls
    assert call["instance"] == "acme-support"


async def test_closed_connection_does_not_sync(
    clean_database: Database, database_url: str, evolution: FakeEvolution
) -> None:
    await create_tenant(clean_database, "acme-support")
    settings = make_settings(database_url, evolution_api_url=evolution.url, job_poll_seconds=0.2)
    async with running_service(settings, Roles(worker=True)) as client:
        await client.post(
            "/webhooks/evolution",
            json=load_fixture("connection.update.close.json"),
            headers=webhook_headers(),
        )
        await asyncio.sleep(1)
    assert evolution.group_calls == []


def sync_cli(
    database_url: str, evolution: FakeEvolution, instance: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        database_url,
        "grupos",
        "sync",
        instance,
        EVOLUTION_API_URL=evolution.url,
        EVOLUTION_API_KEY="evolution-global-key-123456",
    )


async def test_cli_syncs_the_groups_of_an_instance(
    clean_database: Database, database_url: str, evolution: FakeEvolution
) -> None:
    tenant = await create_tenant(
        clean_database, "acme-support", evolution_token="instance-token-123456"
    )
    result = await asyncio.to_thread(sync_cli, database_url, evolution, "acme-support")
    assert result.returncode == 0, result.stderr
    assert "2 groups of acme-support, 2 new (inactive)" in result.stdout
    assert set(await groups_of(clean_database)) == {KNOWN, NEW}
    assert evolution.group_calls[0]["apikey"] == "instance-token-123456"
    assert tenant.id is not None


async def test_cli_names_an_unknown_instance_clearly(
    clean_database: Database, database_url: str, evolution: FakeEvolution
) -> None:
    result = await asyncio.to_thread(sync_cli, database_url, evolution, "nope")
    assert result.returncode == 1
    assert "no tenant has the instance 'nope'" in result.stderr
