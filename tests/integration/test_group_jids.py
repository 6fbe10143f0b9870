"""Group JIDs are validated where they enter: the webhook and Evolution's fetchAllGroups.

The attack (issue 9): any ``…@g.us`` string in a message key used to become a ``grupos`` row —
HTML, 245 characters, ``$`` — without bound. Performed here through the real webhook and the real
``grupos sync`` command against a fake Evolution that returns such ids.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
import pytest

from intellizap.db.engine import Database
from tests.conftest import load_fixture, run_cli, webhook_headers
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution

GROUP = "120363401234567890@g.us"
HOSTILE = [
    "<script>alert(document.cookie)</script>@g.us",
    "1" * 240 + "@g.us",  # 245 characters
    "120363401234567890$@g.us",
    ("<b>" + "$" * 100 + "</b>").ljust(240, "9") + "@g.us",  # all three at once, 245 characters
    "120363401234567890-@g.us",
    "-120363401234567890@g.us",
    "1203634012-3456-7890@g.us",
    "@g.us",
    "120363401234567890@g.us.evil",
]
AUTH = webhook_headers()


def _with_chat(body: dict[str, Any], jid: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["data"]["key"]["remoteJid"] = jid
    return body


def _hostile_bodies(jid: str) -> list[dict[str, Any]]:
    """Every event that carries a chat JID, naming ``jid``."""
    edit = load_fixture("messages.edited.edit.json")
    edit["data"]["key"]["remoteJid"] = jid
    delete = load_fixture("messages.delete.json")
    delete["data"]["remoteJid"] = jid
    groups = load_fixture("groups.upsert.json")
    groups["data"][0]["id"] = jid
    participants = load_fixture("group-participants.update.json")
    participants["data"]["id"] = jid
    return [
        _with_chat(load_fixture("messages.upsert.text.group.json"), jid),
        _with_chat(load_fixture("send.message.json"), jid),
        _with_chat(load_fixture("messages.upsert.reaction.json"), jid),
        edit,
        delete,
        groups,
        participants,
    ]


async def _groups(database: Database) -> set[str]:
    from sqlalchemy import text

    async with database.session() as session:
        return set((await session.execute(text("SELECT grupo_id_externo FROM grupos"))).scalars())


@pytest.mark.parametrize("jid", HOSTILE, ids=lambda jid: f"{jid[:24]}…({len(jid)})")
async def test_a_hostile_group_jid_creates_no_group_and_is_acknowledged(
    service: httpx.AsyncClient,
    clean_database: Database,
    capfd: pytest.CaptureFixture[str],
    jid: str,
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    await create_group(clean_database, tenant, GROUP)
    for body in _hostile_bodies(jid):
        response = await service.post("/webhooks/evolution", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        assert "stored" not in response.json()["events"]
    assert await _groups(clean_database) == {GROUP}
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 0
    logged = capfd.readouterr()
    output = logged.out + logged.err
    if jid.endswith("@g.us"):  # else it is no group at all: a chat we do not keep, silently
        assert "not a group JID" in output
    if jid != "@g.us":
        assert jid not in output  # the attacker's string is not logged


@pytest.mark.parametrize(
    "jid",
    ["120363409876543210@g.us", "5511999990000-1600000000@g.us", " 120363409876543210@G.US "],
)
async def test_a_valid_new_group_is_still_recorded_inactive(
    service: httpx.AsyncClient, clean_database: Database, jid: str
) -> None:
    await create_tenant(clean_database, "acme-support")
    body = _with_chat(load_fixture("messages.upsert.text.group.json"), jid)
    response = await service.post("/webhooks/evolution", json=body, headers=AUTH)
    assert response.status_code == 200
    assert await _groups(clean_database) == {jid.strip().lower()}


async def test_group_sync_leaves_out_ids_that_are_not_group_jids(
    clean_database: Database, database_url: str, evolution: FakeEvolution
) -> None:
    await create_tenant(clean_database, "acme-support")
    good = load_fixture("rest.fetchAllGroups.response.json")
    evolution.groups["acme-support"] = good + [
        {**good[0], "id": jid, "subject": "hostil"} for jid in HOSTILE
    ]
    result = await asyncio.to_thread(
        run_cli,
        database_url,
        "grupos",
        "sync",
        "acme-support",
        EVOLUTION_API_URL=evolution.url,
        EVOLUTION_API_KEY="evolution-global-key-123456",
    )
    assert result.returncode == 0, result.stderr
    assert await _groups(clean_database) == {group["id"] for group in good}
    assert "not group JIDs" in result.stdout + result.stderr
    assert "2 groups of acme-support, 2 new (inactive)" in result.stdout
