"""The webhook through real HTTP into real PostgreSQL: storage rules, idempotency, one tenant's
instance against another's groups, the oldest ``max_grupos`` groups, configuration changes.
Edits and deletes, in whatever order they arrive, are in ``test_webhook_changes.py``."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from intellizap.db.engine import Database
from tests.conftest import load_fixture, make_settings, running_service
from tests.factories import count, create_group, create_tenant, messages_of
from tests.integration.webhook_support import GROUP, SENT_AT, post

OTHER_GROUP = "120363409876543210@g.us"


def in_group(
    body: dict[str, Any], group: str = GROUP, sender: str = "5511988880001@s.whatsapp.net"
) -> dict[str, Any]:
    """A private-chat fixture moved into a group, as WhatsApp would send it there."""
    body = copy.deepcopy(body)
    key = body["data"]["key"]
    key.pop("remoteJidAlt", None)
    key["remoteJid"] = group
    key["participant"] = sender
    key["participantAlt"] = "184467440737095@lid"
    return body


async def test_group_text_message_is_stored_with_author_and_time(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    _, group = tenant_with_group
    response = await post(service, load_fixture("messages.upsert.text.group.json"))
    assert response.status_code == 200
    assert response.json()["events"] == {"stored": 1}
    [row] = await messages_of(clean_database, group.id)
    assert row["id_externo"] == "3A9F2C1B7D6E5A4B3C2D"
    assert row["mensagem"] == "Bom dia, equipe!"
    assert row["autor"] == "Bruno Lima"
    assert row["numero"] == "5521977770002"
    assert row["data_mensagem"] == SENT_AT
    assert row["tipo"] == "texto"
    assert row["enviada_por_mim"] is False


@pytest.mark.parametrize(
    ("fixture", "tipo", "mensagem", "from_me"),
    [
        (
            "messages.upsert.extended.reply.json",
            "texto",
            "@5521977770002 pode ver isso hoje?",
            False,
        ),
        ("messages.upsert.image.caption.json", "imagem", "Foto do produto com defeito", False),
        ("messages.upsert.audio.ptt.json", "audio", None, False),
        ("messages.upsert.audio.base64.json", "audio", None, False),
        ("messages.upsert.fromme.json", "texto", "Já verifiquei, chega amanhã.", True),
        ("send.message.json", "texto", "Olá! Seu pedido #1234 foi enviado.", True),
    ],
)
async def test_each_message_fixture_is_stored_in_an_enabled_group(
    service: httpx.AsyncClient,
    tenant_with_group: tuple[Any, Any],
    clean_database: Database,
    fixture: str,
    tipo: str,
    mensagem: str | None,
    from_me: bool,
) -> None:
    _, group = tenant_with_group
    body = load_fixture(fixture)
    if body["data"]["key"]["remoteJid"] != GROUP:
        body = in_group(body)
    response = await post(service, body)
    assert response.status_code == 200, response.text
    [row] = await messages_of(clean_database, group.id)
    assert (row["tipo"], row["mensagem"], row["enviada_por_mim"]) == (tipo, mensagem, from_me)
    assert row["id_externo"] == body["data"]["key"]["id"]


@pytest.mark.parametrize(
    "fixture",
    [
        "messages.upsert.private.json",
        "messages.upsert.status-broadcast.json",
        "messages.update.json",
        "connection.update.json",
        "connection.update.close.json",
    ],
)
async def test_events_outside_enabled_groups_are_acknowledged_and_not_stored(
    service: httpx.AsyncClient,
    tenant_with_group: tuple[Any, Any],
    clean_database: Database,
    fixture: str,
) -> None:
    response = await post(service, load_fixture(fixture))
    assert response.status_code == 200
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 0
    assert await count(clean_database, "SELECT count(*) FROM grupos") == 1


async def test_reaction_is_counted_not_stored(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    response = await post(service, in_group(load_fixture("messages.upsert.reaction.json")))
    assert response.status_code == 200
    assert response.json()["events"] == {"reaction": 1}
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 0


async def test_unknown_instance_is_acknowledged_and_ignored(
    service: httpx.AsyncClient, clean_database: Database
) -> None:
    response = await post(service, load_fixture("messages.upsert.text.group.json"))
    assert response.status_code == 200
    assert response.json()["events"] == {"unknown_instance": 1}
    assert await count(clean_database, "SELECT count(*) FROM grupos") == 0


async def test_first_message_of_a_new_group_records_it_inactive_and_drops_the_message(
    service: httpx.AsyncClient, clean_database: Database
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    response = await post(service, load_fixture("messages.upsert.text.group.json"))
    assert response.status_code == 200
    async with clean_database.session() as session:
        rows = (
            await session.execute(
                text("SELECT grupo_id_externo, usuario_id, ativo, nome FROM grupos")
            )
        ).all()
    assert [tuple(row) for row in rows] == [(GROUP, tenant.id, False, None)]
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 0


async def test_inactive_group_messages_are_not_stored(
    service: httpx.AsyncClient, clean_database: Database
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    await create_group(clean_database, tenant, GROUP, active=False)
    response = await post(service, load_fixture("messages.upsert.text.group.json"))
    assert response.status_code == 200
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 0


async def test_groups_upsert_records_group_names(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    response = await post(service, load_fixture("groups.upsert.json"))
    assert response.status_code == 200
    async with clean_database.session() as session:
        name = (
            await session.execute(
                text("SELECT nome FROM grupos WHERE grupo_id_externo = :g"), {"g": GROUP}
            )
        ).scalar_one()
    assert name == "Equipe Vendas"


async def test_duplicate_webhook_is_stored_once(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    body = load_fixture("messages.upsert.text.group.json")
    first = await post(service, body)
    second = await post(service, body)
    assert first.json()["events"] == {"stored": 1}
    assert second.status_code == 200
    assert second.json()["events"] == {"duplicate": 1}
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 1


async def test_concurrent_duplicates_are_stored_once(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    body = load_fixture("messages.upsert.text.group.json")
    responses = await asyncio.gather(*(post(service, body) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    outcomes = [next(iter(r.json()["events"])) for r in responses]
    assert outcomes.count("stored") == 1
    assert outcomes.count("duplicate") == 19
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 1


async def test_instance_cannot_write_into_another_tenants_group(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    _, victim_group = tenant_with_group
    intruder = await create_tenant(clean_database, "intruder")
    body = load_fixture("messages.upsert.text.group.json")
    body["instance"] = "intruder"  # names the victim's group JID
    assert (await post(service, body)).status_code == 200
    assert await messages_of(clean_database, victim_group.id) == []
    # The intruder only got its own (inactive) record of that JID.
    async with clean_database.session() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT usuario_id, ativo FROM grupos WHERE grupo_id_externo = :g ORDER BY created_at"
                ),
                {"g": GROUP},
            )
        ).all()
    assert sorted((str(r[0]), r[1]) for r in rows) == sorted(
        [(str(victim_group.tenant_id), True), (str(intruder.id), False)]
    )
    # And editing or deleting the victim's message through the intruder's instance does nothing.
    await post(service, load_fixture("messages.upsert.text.group.json"))
    edit = load_fixture("messages.edited.edit.json")
    edit["instance"] = "intruder"
    edit["data"]["key"] = {"remoteJid": GROUP, "fromMe": False, "id": "3A9F2C1B7D6E5A4B3C2D"}
    assert (await post(service, edit)).status_code == 200
    [row] = await messages_of(clean_database, victim_group.id)
    assert row["mensagem"] == "Bom dia, equipe!"
    assert row["editada_em"] is None


async def test_only_the_oldest_max_grupos_active_groups_are_ingested(
    service: httpx.AsyncClient, clean_database: Database
) -> None:
    tenant = await create_tenant(clean_database, "acme-support", max_groups=1)
    oldest = await create_group(clean_database, tenant, OTHER_GROUP)
    newest = await create_group(clean_database, tenant, GROUP)
    await post(service, load_fixture("messages.upsert.text.group.json"))  # to GROUP (newest)
    other = load_fixture("messages.upsert.text.group.json")
    other["data"]["key"].update(remoteJid=OTHER_GROUP, id="OTHER1")
    await post(service, other)
    assert [m["id_externo"] for m in await messages_of(clean_database, oldest.id)] == ["OTHER1"]
    assert await messages_of(clean_database, newest.id) == []


async def test_configuration_changes_take_effect_within_the_cache_window(
    clean_database: Database, database_url: str
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    group = await create_group(clean_database, tenant, GROUP, active=False)
    async with running_service(make_settings(database_url, tenant_cache_seconds=1)) as client:
        await post(client, load_fixture("messages.upsert.text.group.json"))
        async with clean_database.session() as session:
            await session.execute(
                text("UPDATE grupos SET ativo = true WHERE id = :id"), {"id": group.id}
            )
        await asyncio.sleep(1.1)
        second = load_fixture("messages.upsert.text.group.json")
        second["data"]["key"]["id"] = "AFTER1"
        assert (await post(client, second)).json()["events"] == {"stored": 1}
        # An instance renamed by the frontend is followed too.
        async with clean_database.session() as session:
            await session.execute(
                text("UPDATE usuarios SET instancia = 'renamed' WHERE id = :id"), {"id": tenant.id}
            )
        await asyncio.sleep(1.1)
        third = load_fixture("messages.upsert.text.group.json")
        third["instance"] = "renamed"
        third["data"]["key"]["id"] = "AFTER2"
        assert (await post(client, third)).json()["events"] == {"stored": 1}
    assert [m["id_externo"] for m in await messages_of(clean_database, group.id)] == [
        "AFTER1",
        "AFTER2",
    ]
