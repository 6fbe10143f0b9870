"""Edits and deletes through the webhook into real PostgreSQL: an edit replaces the text, a
delete (or REVOKE) clears it, a receipt is neither, and edits, deletes and their message converge
whatever order they arrive in, also concurrently and in the legacy edited-message upsert."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from intellizap.db.engine import Database
from intellizap.ingest.changes import apply_all_pending_changes
from tests.conftest import load_fixture
from tests.factories import count, messages_of
from tests.integration.webhook_support import GROUP, SENT_AT, post


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
