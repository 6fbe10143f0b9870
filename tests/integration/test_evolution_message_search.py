"""EvolutionClient.find_sent_messages (``findMessages``) against the fake Evolution over real
HTTP: how the service looks up a send whose answer it never got."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from intellizap.evolution.client import EvolutionClient
from tests.fakes.evolution import FakeEvolution
from tests.integration.test_evolution_client import (
    GROUP_JID,
    INSTANCE,
    NUMBER,
    TENANT_TOKEN,
    evo,
    make_client,
    reply_quote,
)

__all__ = ["evo"]  # the fixture


@pytest.fixture
async def client(evo: FakeEvolution) -> AsyncIterator[EvolutionClient]:
    evolution = make_client(evo.url)
    yield evolution
    await evolution.aclose()


async def test_find_sent_messages_finds_our_messages_in_the_chat_and_period(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    first = await client.send_text(INSTANCE, number=GROUP_JID, text="um")
    second = await client.send_text(
        INSTANCE, number=GROUP_JID, text="dois", quote=reply_quote(chat_jid=GROUP_JID)
    )
    await client.send_text(INSTANCE, number=NUMBER, text="outro chat")
    await client.send_text("outra-instancia", number=GROUP_JID, text="outra instância")
    after = datetime.now(UTC) + timedelta(seconds=5)

    found = await client.find_sent_messages(
        INSTANCE, chat_jid=GROUP_JID, since=before, until=after, token=TENANT_TOKEN
    )

    assert {(item.message_id, item.text) for item in found} == {(first, "um"), (second, "dois")}
    assert all(item.sent_at is not None and before <= item.sent_at <= after for item in found)
    (search,) = evo.searches
    assert search["instance"] == INSTANCE
    assert search["apikey"] == TENANT_TOKEN
    assert search["body"]["where"]["key"] == {"remoteJid": GROUP_JID, "fromMe": True}
    assert set(search["body"]["where"]["messageTimestamp"]) == {"gte", "lte"}
    assert (search["body"]["offset"], search["body"]["page"]) == (100, 1)


async def test_find_sent_messages_leaves_out_other_periods(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    await client.send_text(INSTANCE, number=GROUP_JID, text="um")
    later = datetime.now(UTC) + timedelta(minutes=10)

    found = await client.find_sent_messages(
        INSTANCE, chat_jid=GROUP_JID, since=later, until=later + timedelta(minutes=5)
    )

    assert found == []


async def test_find_sent_messages_reads_every_page(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    for n in range(230):
        await client.send_text(INSTANCE, number=GROUP_JID, text=f"mensagem {n}")

    found = await client.find_sent_messages(
        INSTANCE,
        chat_jid=GROUP_JID,
        since=datetime.now(UTC) - timedelta(minutes=1),
        until=datetime.now(UTC) + timedelta(minutes=1),
    )

    assert sorted(item.text or "" for item in found) == sorted(f"mensagem {n}" for n in range(230))
    assert [s["body"]["page"] for s in evo.searches] == [1, 2, 3]


async def test_v1_find_sent_messages_filters_the_period_itself(evo: FakeEvolution) -> None:
    client = make_client(evo.url, api_version=1)
    try:
        sent = await client.send_text(INSTANCE, number=GROUP_JID, text="um")
        now = datetime.now(UTC)
        found = await client.find_sent_messages(
            INSTANCE,
            chat_jid=GROUP_JID,
            since=now - timedelta(minutes=1),
            until=now + timedelta(minutes=1),
        )
        none = await client.find_sent_messages(
            INSTANCE,
            chat_jid=GROUP_JID,
            since=now + timedelta(minutes=5),
            until=now + timedelta(minutes=9),
        )
    finally:
        await client.aclose()

    assert [(item.message_id, item.text) for item in found] == [(sent, "um")]
    assert none == []
    assert evo.searches[0]["body"] == {
        "where": {"key": {"remoteJid": GROUP_JID, "fromMe": True}},
        "limit": 500,
    }


async def test_find_sent_messages_of_an_evolution_that_stores_nothing_is_empty(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.stores_messages = False
    await client.send_text(INSTANCE, number=GROUP_JID, text="um")

    found = await client.find_sent_messages(
        INSTANCE,
        chat_jid=GROUP_JID,
        since=datetime.now(UTC) - timedelta(minutes=1),
        until=datetime.now(UTC) + timedelta(minutes=1),
    )

    assert found == []


async def test_find_sent_messages_skips_malformed_records(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    now = int(datetime.now(UTC).timestamp())
    records = [
        "garbage",
        {"key": "no object"},
        {"key": {"id": ""}},
        {"key": {"id": "A1"}, "message": {"imageMessage": {}}, "messageTimestamp": str(now)},
        {"key": {"id": "A2"}, "message": {"conversation": "oi"}, "messageTimestamp": {"low": now}},
        {"key": {"id": "A3"}, "message": None, "messageTimestamp": True},
    ]
    evo.fail_next("/chat/findMessages/", 200, body={"messages": {"pages": "x", "records": records}})

    found = await client.find_sent_messages(
        INSTANCE,
        chat_jid=GROUP_JID,
        since=datetime.now(UTC) - timedelta(minutes=1),
        until=datetime.now(UTC) + timedelta(minutes=1),
    )

    assert [(item.message_id, item.text) for item in found] == [
        ("A1", None),
        ("A2", "oi"),
        ("A3", None),
    ]
    assert found[2].sent_at is None
