"""Webhook authentication: each instance's credentials in headers, URL or JWT, the global
webhook's token, the body's apikey, and the rollout's grace period."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from intellizap.db.engine import Database
from intellizap.ingest.credentials import global_token, instance_jwt_key, instance_secret
from tests.conftest import (
    WEBHOOK_SECRET,
    load_fixture,
    make_settings,
    running_service,
    webhook_headers,
)
from tests.factories import count, create_group, create_tenant

GROUP = "120363401234567890@g.us"
AUTH = webhook_headers()
JWT_KEY = "jwt-signing-key-for-tests-0123456789"


@pytest.fixture
async def tenant(clean_database: Database) -> Any:
    tenant = await create_tenant(
        clean_database, "acme-support", evolution_token="instance-token-123456"
    )
    await create_group(clean_database, tenant, GROUP)
    return tenant


def message(message_id: str = "3A9F2C1B7D6E5A4B3C2D") -> dict[str, Any]:
    body = load_fixture("messages.upsert.text.group.json")
    body["data"]["key"]["id"] = message_id
    return body


def evolution_jwt(key: str, *, age: int = 0) -> str:
    now = int(time.time()) - age
    return jwt.encode(
        {"iat": now, "exp": now + 600, "app": "evolution", "action": "webhook"},
        key,
        algorithm="HS256",
    )


# -- authentication ------------------------------------------------------------------------------

TOKEN = instance_secret(WEBHOOK_SECRET, "acme-support")
GLOBAL = global_token(WEBHOOK_SECRET)


@pytest.mark.parametrize(
    ("headers", "path", "status"),
    [
        ({}, "/webhooks/evolution", 401),
        (webhook_headers(), "/webhooks/evolution", 200),
        (
            {"X-Webhook-Instance": "acme-support", "X-Webhook-Secret": "wrong"},
            "/webhooks/evolution",
            401,
        ),
        ({}, f"/webhooks/evolution?instance=acme-support&token={TOKEN}", 200),
        ({}, f"/webhooks/evolution?instance=acme-support&token={TOKEN}/messages-upsert", 200),
        ({}, f"/webhooks/evolution?instance=acme-support&token={TOKEN[:-1]}", 401),
        # The global webhook's token is valid for every instance.
        ({}, f"/webhooks/evolution?token={GLOBAL}", 200),
        ({}, f"/webhooks/evolution?token={GLOBAL}/messages-upsert", 200),
        # The undivided master secret is not a credential (outside the grace period).
        ({"X-Webhook-Secret": WEBHOOK_SECRET}, "/webhooks/evolution", 401),
        (
            webhook_headers(secret=WEBHOOK_SECRET) | {"X-Webhook-Secret": WEBHOOK_SECRET},
            "/webhooks/evolution",
            401,
        ),
        ({}, f"/webhooks/evolution?token={WEBHOOK_SECRET}", 401),
    ],
)
async def test_instance_credentials_in_headers_or_url(
    service: httpx.AsyncClient, tenant: Any, headers: dict[str, str], path: str, status: int
) -> None:
    body = message()
    body["apikey"] = None
    response = await service.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert "X-Webhook-Secret" in response.json()["detail"]


async def test_a_secret_without_its_instance_is_refused_with_what_to_send(
    service: httpx.AsyncClient, tenant: Any
) -> None:
    response = await service.post(
        "/webhooks/evolution", json=message(), headers={"X-Webhook-Secret": TOKEN}
    )
    assert response.status_code == 401
    assert "without X-Webhook-Instance" in response.json()["detail"]


async def test_an_instance_name_travels_percent_encoded(
    clean_database: Database, service: httpx.AsyncClient
) -> None:
    tenant = await create_tenant(clean_database, "Loja São João/2")
    await create_group(clean_database, tenant, GROUP)
    body = message()
    body["instance"] = "Loja São João/2"
    headers = webhook_headers("Loja São João/2")
    assert headers["X-Webhook-Instance"] == "Loja%20S%C3%A3o%20Jo%C3%A3o%2F2"
    assert (
        await service.post("/webhooks/evolution", json=body, headers=headers)
    ).status_code == 200
    token = instance_secret(WEBHOOK_SECRET, "Loja São João/2")
    url = f"/webhooks/evolution?instance={headers['X-Webhook-Instance']}&token={token}"
    assert (await service.post(url, json=body)).status_code == 200


def jwt_headers(key: str, instance: str | None = "acme-support", **kwargs: Any) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {evolution_jwt(key, **kwargs)}"}
    if instance is not None:
        headers["X-Webhook-Instance"] = instance
    return headers


async def test_evolution_jwt_is_verified_with_the_instances_own_key(
    clean_database: Database, database_url: str, tenant: Any
) -> None:
    own_key = instance_jwt_key(JWT_KEY, "acme-support")
    body = message()
    body["apikey"] = None
    attempts = {
        "own key": jwt_headers(own_key),
        "another instance's key": jwt_headers(instance_jwt_key(JWT_KEY, "intruder")),
        "the master key": jwt_headers(JWT_KEY),
        "no instance header": jwt_headers(own_key, instance=None),
        "forged": jwt_headers("another-signing-key-0123456789-abcdef"),
        "expired": jwt_headers(own_key, age=3600),
        "garbage": {"Authorization": "Bearer not.a.jwt", "X-Webhook-Instance": "acme-support"},
    }
    async with running_service(
        make_settings(database_url, webhook_secret=None, webhook_jwt_key=JWT_KEY)
    ) as client:
        statuses = {
            name: (await client.post("/webhooks/evolution", json=body, headers=headers)).status_code
            for name, headers in attempts.items()
        }
    assert statuses == {name: 200 if name == "own key" else 401 for name in attempts}


OLD_SECRET = "the-old-shared-secret-every-customer-saw"
OLD_JWT_KEY = "the-old-shared-jwt-key-every-customer-saw"


async def test_the_grace_period_accepts_the_old_shared_secret_for_every_instance(
    clean_database: Database, database_url: str, tenant: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        database_url,
        webhook_jwt_key=JWT_KEY,
        webhook_legacy_secret=OLD_SECRET,
        webhook_legacy_jwt_key=OLD_JWT_KEY,
    )
    async with running_service(settings) as client:

        async def post(message_id: str, headers: dict[str, str], path: str = "") -> int:
            response = await client.post(
                f"/webhooks/evolution{path}", json=message(message_id), headers=headers
            )
            return response.status_code

        old_ways = [
            await post("OLD1", {"X-Webhook-Secret": OLD_SECRET}),
            await post("OLD2", {}, f"?token={OLD_SECRET}"),
            await post("OLD3", jwt_headers(OLD_JWT_KEY, instance=None)),
        ]
        new_way = await post("NEW1", AUTH)
        # Whoever saw the old secret cannot derive the new credentials from it.
        derived_from_old = await post("BAD1", webhook_headers(secret=OLD_SECRET))
        old_jwt_derivation = await post(
            "BAD2", jwt_headers(instance_jwt_key(OLD_JWT_KEY, "acme-support"))
        )
    assert old_ways == [200, 200, 200]
    assert (new_way, derived_from_old, old_jwt_derivation) == (200, 401, 401)
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 4
    # The operator is told which instances still use the old secret, once each.
    assert capsys.readouterr().out.count("authenticated with the legacy shared secret") == 1


async def test_body_apikey_matching_the_instance_token_authenticates(
    service: httpx.AsyncClient, tenant: Any
) -> None:
    body = message()
    body["apikey"] = "instance-token-123456"
    assert (await service.post("/webhooks/evolution", json=body)).status_code == 200
    body["apikey"] = "someone-elses-token"
    assert (await service.post("/webhooks/evolution", json=body)).status_code == 401


async def test_unauthenticated_malformed_body_gets_401_not_a_parse_error(
    service: httpx.AsyncClient,
) -> None:
    response = await service.post("/webhooks/evolution", content=b"{not json")
    assert response.status_code == 401
