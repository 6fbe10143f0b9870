"""The webhook through real HTTP into real PostgreSQL: storage rules, idempotency, ordering."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.ingest.changes import apply_all_pending_changes
from tests.conftest import load_fixture, make_settings, running_service, webhook_headers
from tests.factories import count, create_group, create_tenant, messages_of

GROUP = "120363401234567890@g.us"
OTHER_GROUP = "120363409876543210@g.us"
SENT_AT = datetime.fromtimestamp(1761055392, UTC)


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


async def post(client: httpx.AsyncClient, body: Any, **kwargs: Any) -> httpx.Response:
    """POST ``body`` with the credentials Evolution sends for the body's instance."""
    headers = kwargs.pop("headers", None) or webhook_headers(body["instance"])
    return await client.post("/webhooks/evolution", json=body, headers=headers, **kwargs)


@pytest.fixture
async def tenant_with_group(clean_database: Database) -> tuple[Any, Any]:
    tenant = await create_tenant(clean_database, "acme-support")
    group = await create_group(clean_database, tenant, GROUP)
    return tenant, group


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


def edit_of(message_id: str, new_text: str, at_ms: int) -> dict[str, Any]:
    body = load_fixture("messages.edited.edit.json")
    body["data"]["key"] = {
        "remoteJid": GROUP,
        "fromMe": False,
        "id": message_id,
        "participant": "5521977770002@s.whatsapp.net",
    }
    body["data"]["editedMessage"] = {"conversation": new_text}
    body["data"]["timestampMs"] = str(at_ms)
    return body


def revoke_of(message_id: str) -> dict[str, Any]:
    body = load_fixture("messages.edited.revoke.json")
    body["data"]["key"] = {"remoteJid": GROUP, "fromMe": False, "id": message_id}
    return body


def delete_of(message_id: str) -> dict[str, Any]:
    body = load_fixture("messages.delete.json")
    body["data"] = {
        "remoteJid": GROUP,
        "fromMe": False,
        "id": message_id,
        "participant": "5521977770002@s.whatsapp.net",
    }
    return body


MESSAGE_ID = "3A9F2C1B7D6E5A4B3C2D"
EDIT_MS = 1761055412345


async def test_edit_updates_text_and_sets_editada_em(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    _, group = tenant_with_group
    await post(service, load_fixture("messages.upsert.text.group.json"))
    response = await post(service, edit_of(MESSAGE_ID, "Bom dia, equipe! (editado)", EDIT_MS))
    assert response.json()["events"] == {"edited": 1}
    [row] = await messages_of(clean_database, group.id)
    assert row["mensagem"] == "Bom dia, equipe! (editado)"
    assert row["editada_em"] == datetime.fromtimestamp(EDIT_MS / 1000, UTC)
    assert row["autor"] == "Bruno Lima"


@pytest.mark.parametrize("deletion", [delete_of, revoke_of], ids=["messages.delete", "REVOKE"])
async def test_delete_clears_text_and_sets_apagada_em(
    service: httpx.AsyncClient,
    tenant_with_group: tuple[Any, Any],
    clean_database: Database,
    deletion: Any,
) -> None:
    _, group = tenant_with_group
    await post(service, load_fixture("messages.upsert.text.group.json"))
    assert (await post(service, deletion(MESSAGE_ID))).json()["events"] == {"deleted": 1}
    [row] = await messages_of(clean_database, group.id)
    assert row["mensagem"] is None
    assert row["apagada_em"] is not None


async def test_receipt_with_deleted_status_is_not_a_delete(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    _, group = tenant_with_group
    await post(service, load_fixture("messages.upsert.text.group.json"))
    update = load_fixture("messages.update.json")
    update["data"].update(keyId=MESSAGE_ID, remoteJid=GROUP, status="DELETED")
    assert (await post(service, update)).status_code == 200
    [row] = await messages_of(clean_database, group.id)
    assert row["mensagem"] == "Bom dia, equipe!"
    assert row["apagada_em"] is None


ORDERINGS = {
    "message, edit, edit2": ["message", "edit", "edit2"],
    "edit, message": ["edit", "message"],
    "edit2, edit, message": ["edit2", "edit", "message"],
    "edit, message, edit2": ["edit", "message", "edit2"],
    "delete, message": ["delete", "message"],
    "edit, delete, message": ["edit", "delete", "message"],
    "message, delete, edit": ["message", "delete", "edit"],
    "delete, edit2, message, edit": ["delete", "edit2", "message", "edit"],
}


@pytest.mark.parametrize("order", list(ORDERINGS.values()), ids=list(ORDERINGS))
async def test_out_of_order_edits_and_deletes_converge(
    service: httpx.AsyncClient,
    tenant_with_group: tuple[Any, Any],
    clean_database: Database,
    order: list[str],
) -> None:
    _, group = tenant_with_group
    bodies = {
        "message": load_fixture("messages.upsert.text.group.json"),
        "edit": edit_of(MESSAGE_ID, "first edit", EDIT_MS),
        "edit2": edit_of(MESSAGE_ID, "second edit", EDIT_MS + 5000),
        "delete": delete_of(MESSAGE_ID),
    }
    for name in order:
        assert (await post(service, bodies[name])).status_code == 200
    [row] = await messages_of(clean_database, group.id)
    assert row["autor"] == "Bruno Lima"
    assert row["data_mensagem"] == SENT_AT
    if "delete" in order:
        assert (row["mensagem"], row["apagada_em"] is not None) == (None, True)
    else:
        expected = "second edit" if "edit2" in order else "first edit"
        assert row["mensagem"] == expected
        assert row["editada_em"] == datetime.fromtimestamp(
            (EDIT_MS + (5000 if "edit2" in order else 0)) / 1000, UTC
        )
    assert await count(clean_database, "SELECT count(*) FROM alteracoes_pendentes") == 0


async def test_concurrent_message_and_edit_converge(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    _, group = tenant_with_group
    for attempt in range(10):
        message = load_fixture("messages.upsert.text.group.json")
        message["data"]["key"]["id"] = f"RACE{attempt}"
        await asyncio.gather(
            post(service, edit_of(f"RACE{attempt}", "edited", EDIT_MS)), post(service, message)
        )
    # The worker's minute sweep closes the one interleaving neither side sees (see changes.py).
    await apply_all_pending_changes(clean_database)
    rows = await messages_of(clean_database, group.id)
    assert [row["mensagem"] for row in rows] == ["edited"] * 10


async def test_legacy_edited_message_upsert_is_an_edit(
    service: httpx.AsyncClient, tenant_with_group: tuple[Any, Any], clean_database: Database
) -> None:
    _, group = tenant_with_group
    await post(service, load_fixture("messages.upsert.text.group.json"))
    legacy = load_fixture("messages.upsert.text.group.json")
    legacy["data"]["key"]["id"] = "CARRIER1"
    legacy["data"]["messageType"] = "editedMessage"
    legacy["data"]["message"] = {
        "editedMessage": {
            "message": {
                "protocolMessage": {
                    "key": {"remoteJid": GROUP, "fromMe": False, "id": MESSAGE_ID},
                    "type": "MESSAGE_EDIT",
                    "editedMessage": {"conversation": "corrigido"},
                }
            }
        }
    }
    assert (await post(service, legacy)).status_code == 200
    [row] = await messages_of(clean_database, group.id)
    assert row["mensagem"] == "corrigido"
    assert row["editada_em"] is not None


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
