"""A second tenant's real webhook credentials against the first tenant's instance.

The attack of issue 9: Evolution returns an instance's webhook headers (``GET /webhook/find``) to
whoever holds that instance's token, and each customer holds theirs. With one shared secret, any
customer could forge messages, deletes and ``fromMe`` ``/resumo`` commands for every other one.
Here both instances are configured the way ``intellizap webhook set`` does it, the attacker
reads their own configuration from (fake) Evolution with their own token, and uses it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from intellizap.db.engine import Database
from intellizap.evolution.client import EvolutionClient
from intellizap.ingest.subscription import instance_webhook
from tests.conftest import load_fixture, make_settings, running_service
from tests.factories import count, create_group, create_tenant, messages_of
from tests.fakes.evolution import FakeEvolution

VICTIM, ATTACKER = "acme-support", "intruder"
VICTIM_GROUP = "120363401234567890@g.us"
MESSAGE_ID = "3A9F2C1B7D6E5A4B3C2D"
JWT_KEY = "jwt-signing-key-for-tests-0123456789"
TOKENS = {VICTIM: "victim-instance-token-123", ATTACKER: "attacker-instance-token-456"}


def settings_for(database_url: str, evolution: FakeEvolution, **overrides: Any) -> Any:
    return make_settings(
        database_url,
        public_url="https://intellizap.example.com",
        evolution_api_url=evolution.url,
        evolution_api_key="evolution-global-key-123456",
        **overrides,
    )


async def configure_instances(settings: Any, **options: Any) -> None:
    """``intellizap webhook set`` for both instances (what the operator runs)."""
    client = EvolutionClient.from_settings(settings)
    try:
        for instance, token in TOKENS.items():
            config = instance_webhook(settings, instance, **options)
            await client.set_webhook(instance, config, token=token)
    finally:
        await client.aclose()


async def what_evolution_shows(evolution: FakeEvolution, instance: str, token: str) -> Any:
    async with httpx.AsyncClient(base_url=evolution.url) as client:
        return await client.get(f"/webhook/find/{instance}", headers={"apikey": token})


@pytest.fixture
async def victim_with_a_message(clean_database: Database, evolution: FakeEvolution) -> Any:
    victim = await create_tenant(clean_database, VICTIM, evolution_token=TOKENS[VICTIM])
    await create_tenant(clean_database, ATTACKER, evolution_token=TOKENS[ATTACKER])
    group = await create_group(clean_database, victim, VICTIM_GROUP)
    evolution.instance_tokens = {token: instance for instance, token in TOKENS.items()}
    return group


@pytest.fixture
async def service(
    clean_database: Database, database_url: str, evolution: FakeEvolution
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(database_url, evolution)
    await configure_instances(settings)
    async with running_service(settings) as client:
        yield client


def forged_bodies() -> dict[str, dict[str, Any]]:
    """What the attacker sends, all naming the victim's instance."""
    message = load_fixture("messages.upsert.text.group.json")
    message["data"]["key"]["id"] = "FORGED1"
    message["data"]["message"] = {"conversation": "Pix para a conta 0000-0, urgente"}
    delete = load_fixture("messages.delete.json")
    delete["data"] = {"remoteJid": VICTIM_GROUP, "fromMe": False, "id": MESSAGE_ID}
    command = load_fixture("messages.upsert.fromme.json")
    command["data"]["key"].update(id="FORGED2", remoteJid=VICTIM_GROUP, fromMe=True)
    command["data"]["message"] = {"conversation": "/resumo"}
    bodies = {"message": message, "delete": delete, "/resumo": command}
    for body in bodies.values():
        body["instance"] = VICTIM
        body["apikey"] = None
    return bodies


async def assert_victim_untouched(database: Database, group: Any) -> None:
    [row] = await messages_of(database, group.id)
    assert (row["id_externo"], row["mensagem"], row["apagada_em"]) == (
        MESSAGE_ID,
        "Bom dia, equipe!",
        None,
    )
    assert await count(database, "SELECT count(*) FROM resumos") == 0
    assert await count(database, "SELECT count(*) FROM alteracoes_pendentes") == 0


async def test_another_tenants_webhook_headers_forge_nothing(
    service: httpx.AsyncClient,
    evolution: FakeEvolution,
    clean_database: Database,
    victim_with_a_message: Any,
) -> None:
    group = victim_with_a_message
    victim_headers = (await what_evolution_shows(evolution, VICTIM, TOKENS[VICTIM])).json()
    genuine = load_fixture("messages.upsert.text.group.json")
    stored = await service.post(
        "/webhooks/evolution", json=genuine, headers=victim_headers["headers"]
    )
    assert stored.json()["events"] == {"stored": 1}

    # The attacker cannot read the victim's configuration, only their own...
    assert (await what_evolution_shows(evolution, VICTIM, TOKENS[ATTACKER])).status_code == 401
    own = (await what_evolution_shows(evolution, ATTACKER, TOKENS[ATTACKER])).json()["headers"]
    # ...whose credentials are real: they deliver the attacker's own events.
    own_event = load_fixture("connection.update.json")
    own_event["instance"] = ATTACKER
    response = await service.post("/webhooks/evolution", json=own_event, headers=own)
    assert response.status_code == 200

    renamed = {**own, "X-Webhook-Instance": VICTIM}  # and claiming the victim's name
    for name, body in forged_bodies().items():
        for headers in (own, renamed):
            response = await service.post("/webhooks/evolution", json=body, headers=headers)
            assert response.status_code == 401, (name, headers)
        # The attacker's own instance token in the body does not pass for the victim either.
        body["apikey"] = TOKENS[ATTACKER]
        response = await service.post("/webhooks/evolution", json=body)
        assert response.status_code == 401, name

    await assert_victim_untouched(clean_database, group)


async def test_another_tenants_url_credentials_forge_nothing(
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    victim_with_a_message: Any,
) -> None:
    """Evolution 1.8 (and older v2) configurations carry the credentials in the URL."""
    group = victim_with_a_message
    settings = settings_for(database_url, evolution)
    await configure_instances(settings, credentials_in_url=True)
    own_url = (await what_evolution_shows(evolution, ATTACKER, TOKENS[ATTACKER])).json()["url"]
    path = own_url.removeprefix("https://intellizap.example.com")
    victim_url = path.replace(f"instance={ATTACKER}", f"instance={VICTIM}")
    async with running_service(settings) as client:
        for name, body in forged_bodies().items():
            for url in (path, victim_url, path + "/messages-upsert"):
                response = await client.post(url, json=body)
                assert response.status_code == 401, (name, url)
        genuine = load_fixture("messages.upsert.text.group.json")
        genuine["data"]["key"]["id"] = MESSAGE_ID
        victims_own = (await what_evolution_shows(evolution, VICTIM, TOKENS[VICTIM])).json()
        victim_path = victims_own["url"].removeprefix("https://intellizap.example.com")
        assert (await client.post(victim_path, json=genuine)).status_code == 200
    await assert_victim_untouched(clean_database, group)


async def test_another_tenants_jwt_key_forges_nothing(
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    victim_with_a_message: Any,
) -> None:
    """Evolution >= 2.3 signs a JWT per delivery with the instance's ``jwt_key``."""
    group = victim_with_a_message
    settings = settings_for(database_url, evolution, webhook_secret=None, webhook_jwt_key=JWT_KEY)
    await configure_instances(settings)
    own = (await what_evolution_shows(evolution, ATTACKER, TOKENS[ATTACKER])).json()["headers"]
    now = int(time.time())
    token = jwt.encode(
        {"iat": now, "exp": now + 600, "app": "evolution", "action": "webhook"},
        own["jwt_key"],
        algorithm="HS256",
    )
    async with running_service(settings) as client:
        for name, body in forged_bodies().items():
            for instance in (ATTACKER, VICTIM):
                headers = {"Authorization": f"Bearer {token}", "X-Webhook-Instance": instance}
                response = await client.post("/webhooks/evolution", json=body, headers=headers)
                assert response.status_code == 401, (name, instance)
    assert await messages_of(clean_database, group.id) == []


async def test_the_grace_period_still_trusts_the_shared_secret_until_it_ends(
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    victim_with_a_message: Any,
) -> None:
    """Why the grace period must be short: an instance still configured with the old shared
    secret shows it to its customer, and it opens every instance."""
    group = victim_with_a_message
    old_secret = "the-old-shared-secret-every-customer-saw"
    old_config = {"X-Webhook-Secret": old_secret}
    body = forged_bodies()["message"]
    grace = settings_for(database_url, evolution, webhook_legacy_secret=old_secret)
    async with running_service(grace) as client:
        during = await client.post("/webhooks/evolution", json=body, headers=old_config)
    async with running_service(settings_for(database_url, evolution)) as client:
        body["data"]["key"]["id"] = "FORGED3"
        after = await client.post("/webhooks/evolution", json=body, headers=old_config)
    assert (during.status_code, after.status_code) == (200, 401)
    assert [m["id_externo"] for m in await messages_of(clean_database, group.id)] == ["FORGED1"]
