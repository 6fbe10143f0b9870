"""How EvolutionClient reports Evolution's 4xx answers, against the fake over real HTTP: each
error says what is wrong and never carries a key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from intellizap.evolution.client import EvolutionClient
from intellizap.evolution.errors import (
    BadRequest,
    EvolutionError,
    InstanceNotFound,
    NotAuthorized,
    NotOnWhatsApp,
)
from tests.conftest import assert_no_secret
from tests.fakes.evolution import NOT_ON_WHATSAPP, FakeEvolution, not_on_whatsapp

GLOBAL_KEY = "evo-global-key-0123456789abcdef"
TENANT_TOKEN = "evo-tenant-token-fedcba9876543210"
INSTANCE = "loja"
NUMBER = "5511988880001"
REPLY = "Olá! Seu pedido #1234 foi enviado."
SEND = "/message/sendText/"


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


# --- 4xx errors ----------------------------------------------------------------------------------


async def test_401_is_not_authorized_and_not_retried(evo: FakeEvolution) -> None:
    evo.valid_keys = {GLOBAL_KEY}
    wrong = "evo-wrong-token-00000000000000"
    client = make_client(evo.url)
    try:
        with pytest.raises(NotAuthorized) as caught:
            await client.send_text(INSTANCE, number=NUMBER, text=REPLY, token=wrong)
    finally:
        await client.aclose()

    assert caught.value.transient is False
    assert "401" in str(caught.value)
    assert [r.status for r in evo.requests_to(SEND)] == [401]
    assert_no_secret(caught.value, wrong, GLOBAL_KEY)


async def test_404_is_instance_not_found(evo: FakeEvolution, client: EvolutionClient) -> None:
    evo.instances = {"other"}

    with pytest.raises(InstanceNotFound) as caught:
        await client.send_text(INSTANCE, number=NUMBER, text=REPLY)

    assert caught.value.transient is False
    assert f'The "{INSTANCE}" instance does not exist' in str(caught.value)
    assert [r.status for r in evo.requests_to(SEND)] == [404]
    assert_no_secret(caught.value, GLOBAL_KEY)


@pytest.mark.parametrize("body", [NOT_ON_WHATSAPP, not_on_whatsapp("+55 11 90000-1111")])
async def test_400_not_on_whatsapp(
    evo: FakeEvolution, client: EvolutionClient, body: dict[str, Any]
) -> None:
    evo.fail_next(SEND, 400, body=body)

    with pytest.raises(NotOnWhatsApp) as caught:
        await client.send_text(INSTANCE, number="5511900000000", text=REPLY)

    assert caught.value.transient is False
    assert body["response"]["message"][0]["number"] in str(caught.value)
    assert [r.status for r in evo.requests_to(SEND)] == [400]
    assert_no_secret(caught.value, GLOBAL_KEY)


async def test_other_400_is_bad_request_with_evolutions_message(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    with pytest.raises(BadRequest) as caught:
        await client.send_text(INSTANCE, number=NUMBER, text="   ", token=TENANT_TOKEN)

    assert not isinstance(caught.value, NotOnWhatsApp)
    assert caught.value.transient is False
    assert "Text is required" in str(caught.value)
    assert "400" in str(caught.value)
    assert [r.status for r in evo.requests_to(SEND)] == [400]
    assert_no_secret(caught.value, GLOBAL_KEY, TENANT_TOKEN)


async def test_400_with_a_plain_message_keeps_it(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.fail_next(SEND, 400, body={"message": "something odd happened"})

    with pytest.raises(BadRequest, match="something odd happened"):
        await client.send_text(INSTANCE, number=NUMBER, text=REPLY)


async def test_every_error_is_an_evolution_error(
    evo: FakeEvolution, client: EvolutionClient
) -> None:
    evo.instances = {"other"}
    with pytest.raises(EvolutionError):
        await client.fetch_all_groups(INSTANCE)
