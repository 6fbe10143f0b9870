"""EvolutionClient against the fake Evolution API over real HTTP.

Request bodies are compared with the fixtures of reference.md §4 (tests/fixtures/evolution).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from intellizap.evolution.client import EvolutionClient, Quote
from intellizap.evolution.errors import (
    DeliveryUnknown,
    EvolutionUnavailable,
    NotAuthorized,
)
from tests.conftest import assert_no_secret, free_port, load_fixture
from tests.fakes.evolution import FakeEvolution

GLOBAL_KEY = "evo-global-key-0123456789abcdef"
TENANT_TOKEN = "evo-tenant-token-fedcba9876543210"
INSTANCE = "loja"
NUMBER = "5511988880001"
CHAT_JID = "5511988880001@s.whatsapp.net"
GROUP_JID = "120363401234567890@g.us"
QUOTED_ID = "A5561E44C2A63682E4295B52F484C14E"
QUOTED_TEXT = "Oi, qual o status do meu pedido #1234?"
REPLY = "Olá! Seu pedido #1234 foi enviado."
SEND = "/message/sendText/"
MESSAGE_ID = re.compile(r"^3EB0[0-9A-F]{18}$")


@pytest.fixture
def evo() -> Iterator[FakeEvolution]:
    with FakeEvolution.running() as fake:
        yield fake


def make_client(url: str, **kwargs: Any) -> EvolutionClient:
    options: dict[str, Any] = {"api_key": GLOBAL_KEY, "backoff": 0.01, "timeout": 10.0}
    options.update(kwargs)
    return EvolutionClient(url, **options)


@pytest.fixture
async def client(evo: FakeEvolution) -> AsyncIterator[EvolutionClient]:
    evolution = make_client(evo.url)
    yield evolution
    await evolution.aclose()


def reply_quote(**overrides: Any) -> Quote:
    values: dict[str, Any] = {
        "message_id": QUOTED_ID,
        "chat_jid": CHAT_JID,
        "from_me": False,
        "message": {"conversation": QUOTED_TEXT},
    }
    values.update(overrides)
    return Quote(**values)


# --- sendText ------------------------------------------------------------------------------------


async def test_v2_send_text_body_has_the_shape_of_the_fixture(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    fixture = load_fixture("rest.sendText.v2.request.json")

    message_id = await client.send_text(INSTANCE, number=NUMBER, text=REPLY, quote=reply_quote())

    (sent,) = evo.sent
    assert sent.body == {
        "number": NUMBER,
        "text": REPLY,
        "linkPreview": False,
        "quoted": {
            "key": {"id": QUOTED_ID, "remoteJid": CHAT_JID, "fromMe": False},
            "message": {"conversation": QUOTED_TEXT},
        },
    }
    # Same fields as Evolution's documented request (``delay`` is optional pacing, not used).
    assert set(sent.body) == set(fixture) - {"delay"}
    assert sent.body["linkPreview"] is fixture["linkPreview"] is False
    assert sent.body["quoted"]["message"] == fixture["quoted"]["message"]
    assert fixture["quoted"]["key"].items() <= sent.body["quoted"]["key"].items()
    assert (sent.instance, sent.number, sent.text, sent.quoted_id) == (
        INSTANCE,
        NUMBER,
        REPLY,
        QUOTED_ID,
    )
    assert message_id is not None
    assert MESSAGE_ID.match(message_id)


async def test_v2_send_text_returns_each_new_message_id(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    first = await client.send_text(INSTANCE, number=NUMBER, text="um")
    second = await client.send_text(INSTANCE, number=NUMBER, text="dois")

    assert first is not None
    assert second is not None
    assert MESSAGE_ID.match(first)
    assert MESSAGE_ID.match(second)
    assert first != second
    assert [s.body for s in evo.sent] == [
        {"number": NUMBER, "text": "um", "linkPreview": False},
        {"number": NUMBER, "text": "dois", "linkPreview": False},
    ]


async def test_v2_quote_of_a_group_message_names_its_participant(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    quote = reply_quote(
        chat_jid=GROUP_JID, participant="5521977770002@s.whatsapp.net", message=None
    )

    await client.send_text(INSTANCE, number=GROUP_JID, text=REPLY, quote=quote)

    (sent,) = evo.sent
    assert sent.body["number"] == GROUP_JID
    assert sent.body["quoted"] == {
        "key": {
            "id": QUOTED_ID,
            "remoteJid": GROUP_JID,
            "fromMe": False,
            "participant": "5521977770002@s.whatsapp.net",
        }
    }


async def test_v1_send_text_body_has_the_shape_of_the_fixture(evo: FakeEvolution) -> None:
    fixture = load_fixture("rest.sendText.v1.request.json")
    client = make_client(evo.url, api_version=1)
    try:
        message_id = await client.send_text(
            INSTANCE, number=NUMBER, text=REPLY, quote=reply_quote()
        )
    finally:
        await client.aclose()

    (sent,) = evo.sent
    assert sent.body == {
        "number": NUMBER,
        "options": {
            "delay": 0,
            "presence": "composing",
            "linkPreview": False,
            "quoted": fixture["options"]["quoted"],
        },
        "textMessage": {"text": REPLY},
    }
    assert set(sent.body) == set(fixture)
    assert set(sent.body["options"]) == set(fixture["options"]) - {"mentions"}
    assert sent.body["textMessage"] == fixture["textMessage"]
    assert sent.quoted_id == QUOTED_ID
    assert message_id is not None
    assert MESSAGE_ID.match(message_id)


async def test_v1_send_text_without_quote_has_no_quoted_option(evo: FakeEvolution) -> None:
    client = make_client(evo.url, api_version=1)
    try:
        await client.send_text(INSTANCE, number=NUMBER, text=REPLY)
    finally:
        await client.aclose()

    (sent,) = evo.sent
    assert sent.body == {
        "number": NUMBER,
        "options": {"delay": 0, "presence": "composing", "linkPreview": False},
        "textMessage": {"text": REPLY},
    }


async def test_instance_name_is_escaped_in_the_path(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    await client.send_text("Loja Centro", number=NUMBER, text=REPLY)

    (sent,) = evo.sent
    assert sent.instance == "Loja Centro"


async def test_mentions_go_in_each_versions_own_field(evo: FakeEvolution) -> None:
    for version in (1, 2):
        client = make_client(evo.url, api_version=version)
        try:
            await client.send_text(
                INSTANCE, number=GROUP_JID, text=f"@{NUMBER} confirma?", mentioned=[NUMBER]
            )
        finally:
            await client.aclose()
    v1, v2 = evo.sent
    assert v1.body["options"]["mentions"] == {"everyOne": False, "mentioned": [NUMBER]}
    assert v2.body["mentioned"] == [NUMBER]
    assert "mentionsEveryOne" not in v2.body
    assert v1.mentioned == v2.mentioned == [NUMBER]


# --- apikey header -------------------------------------------------------------------------------


async def test_apikey_header_is_the_tenant_token_when_given(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.valid_keys = {TENANT_TOKEN}

    await client.send_text(INSTANCE, number=NUMBER, text=REPLY, token=TENANT_TOKEN)

    assert [s.apikey for s in evo.sent] == [TENANT_TOKEN]
    assert [r.apikey for r in evo.requests] == [TENANT_TOKEN]


async def test_apikey_header_is_the_global_key_without_a_tenant_token(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.valid_keys = {GLOBAL_KEY}

    await client.send_text(INSTANCE, number=NUMBER, text=REPLY)
    await client.send_text(INSTANCE, number=NUMBER, text=REPLY, token="")
    await client.fetch_all_groups(INSTANCE)

    assert [s.apikey for s in evo.sent] == [GLOBAL_KEY, GLOBAL_KEY]
    assert [r.apikey for r in evo.requests] == [GLOBAL_KEY] * 3


async def test_no_key_at_all_sends_no_header_and_is_not_authorized(evo: FakeEvolution) -> None:
    client = make_client(evo.url, api_key=None)
    try:
        with pytest.raises(NotAuthorized):
            await client.send_text(INSTANCE, number=NUMBER, text=REPLY)
    finally:
        await client.aclose()

    assert [r.apikey for r in evo.requests] == [None]
    assert evo.sent == []


# --- retries ------------------------------------------------------------------------------------
#
# A read is retried on 5xx and network errors. A send is not: once the request may have reached
# Evolution, repeating it could put the message in the group twice.


async def test_a_read_answered_5xx_is_retried(evo: FakeEvolution, client: EvolutionClient) -> None:
    evo.fail_next("/group/fetchAllGroups/", 503, times=2)

    groups = await client.fetch_all_groups(INSTANCE)

    assert [r.status for r in evo.requests_to("/group/fetchAllGroups/")] == [503, 503, 200]
    assert groups


async def test_a_read_answered_429_is_retried(evo: FakeEvolution, client: EvolutionClient) -> None:
    evo.fail_next("/group/findGroupInfos/", 429, retry_after=0)

    await client.find_group_info(INSTANCE, GROUP_JID)

    assert [r.status for r in evo.requests_to("/group/findGroupInfos/")] == [429, 200]


async def test_a_read_failing_with_5xx_is_unavailable_after_all_attempts(
    evo: FakeEvolution,
) -> None:
    evo.fail_next("/group/fetchAllGroups/", 500, times=10)
    client = make_client(evo.url, attempts=4)
    try:
        with pytest.raises(EvolutionUnavailable) as caught:
            await client.fetch_all_groups(INSTANCE)
    finally:
        await client.aclose()

    assert not isinstance(caught.value, DeliveryUnknown)
    assert caught.value.transient is True
    assert "500" in str(caught.value)
    assert [r.status for r in evo.requests_to("/group/")] == [500] * 4
    assert_no_secret(caught.value, GLOBAL_KEY)


async def test_a_send_answered_500_after_it_went_out_is_not_repeated(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.fail_after_sending(500, times=3)

    with pytest.raises(DeliveryUnknown) as caught:
        await client.send_text(INSTANCE, number=GROUP_JID, text=REPLY)

    assert len(evo.sent) == 1  # the message is in the group once; the old client sent it thrice
    assert [r.status for r in evo.requests_to(SEND)] == [500]
    assert caught.value.transient is True
    assert "500" in str(caught.value)
    assert "may have been carried out" in str(caught.value)
    assert_no_secret(caught.value, GLOBAL_KEY)


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_send_answered_5xx_is_not_repeated_even_when_it_did_not_go_out(
    evo: FakeEvolution, client: EvolutionClient, status: int
) -> None:
    """From the client's side a gateway 5xx looks the same whether or not Evolution acted."""
    evo.fail_next(SEND, status, times=3)

    with pytest.raises(DeliveryUnknown):
        await client.send_text(INSTANCE, number=GROUP_JID, text=REPLY)

    assert [r.status for r in evo.requests_to(SEND)] == [status]
    assert evo.sent == []


async def test_a_send_whose_answer_times_out_is_not_repeated(evo: FakeEvolution) -> None:
    gate = evo.hold_after_sending()
    client = make_client(evo.url, timeout=0.5)
    try:
        with pytest.raises(DeliveryUnknown) as caught:
            await client.send_text(INSTANCE, number=GROUP_JID, text=REPLY)
    finally:
        gate.release()
        await client.aclose()

    assert "ReadTimeout" in str(caught.value)
    assert len(evo.requests_to(SEND)) == 1
    assert len(evo.sent) == 1


async def test_a_send_refused_with_429_did_not_go_out_and_says_when_to_retry(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.fail_next(SEND, 429, retry_after=7)

    with pytest.raises(EvolutionUnavailable) as caught:
        await client.send_text(INSTANCE, number=GROUP_JID, text=REPLY)

    assert not isinstance(caught.value, DeliveryUnknown)
    assert caught.value.retry_after == 7
    assert [r.status for r in evo.requests_to(SEND)] == [429]


async def test_a_send_to_an_unreachable_server_is_unavailable_not_unknown() -> None:
    client = make_client(f"http://127.0.0.1:{free_port()}", attempts=2)
    try:
        with pytest.raises(EvolutionUnavailable) as caught:
            await client.send_text(INSTANCE, number=NUMBER, text=REPLY, token=TENANT_TOKEN)
    finally:
        await client.aclose()

    # Nothing was written to the network: the send certainly did not go out.
    assert not isinstance(caught.value, DeliveryUnknown)
    assert caught.value.transient is True
    assert "unreachable" in str(caught.value)
    assert_no_secret(caught.value, GLOBAL_KEY, TENANT_TOKEN)
