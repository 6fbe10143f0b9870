"""The webhook's HTTP protocol with Evolution: authentication, status codes, limits, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intellizap.app import create_app
from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.db.engine import Database
from intellizap.ingest.credentials import global_token, instance_jwt_key, instance_secret
from tests.conftest import (
    WEBHOOK_SECRET,
    load_fixture,
    make_settings,
    running_service,
    serve_in_thread,
    wait_until,
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


# -- routes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/evolution/messages-upsert",
        "/webhooks/evolution//messages-upsert",
        "/webhooks/evolution/",
    ],
)
async def test_by_events_urls_are_accepted(
    service: httpx.AsyncClient, tenant: Any, clean_database: Database, path: str
) -> None:
    response = await service.post(path, json=message(), headers=AUTH)
    assert response.status_code == 200
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 1


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "status", "detail"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "not valid JSON"),
        (b"[1, 2]", 422, ""),
        (b'"text"', 422, ""),
        (b'{"instance": "acme-support", "data": {}}', 422, "event"),
        (b'{"event": 5, "instance": "acme-support", "data": {}}', 422, "event"),
        (b'{"event": "messages.upsert", "data": {}}', 422, "instance"),
        (
            b'{"event": "messages.upsert", "instance": "acme-support",'
            b' "data": {"key": {"remoteJid": "1@g.us", "id": 7}}}',
            422,
            "id",
        ),
        (
            b'{"event": "messages.upsert", "instance": "acme-support", "data": {"message": {}}}',
            422,
            "key",
        ),
        (b'{"event": "messages.upsert", "instance": "acme-support", "data": "nope"}', 422, ""),
    ],
)
async def test_malformed_bodies_get_a_clear_4xx(
    service: httpx.AsyncClient, tenant: Any, content: bytes, status: int, detail: str
) -> None:
    response = await service.post(
        "/webhooks/evolution", content=content, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert detail in response.json()["detail"]


async def test_unknown_event_is_acknowledged(service: httpx.AsyncClient, tenant: Any) -> None:
    body = {
        "event": "qrcode.updated",
        "instance": "acme-support",
        "data": {"qrcode": {"base64": "x"}},
    }
    response = await service.post("/webhooks/evolution", json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["events"] == {"ignored": 1}


async def test_oversized_body_is_refused_with_413(
    clean_database: Database, database_url: str, tenant: Any
) -> None:
    async with running_service(make_settings(database_url, webhook_max_bytes=2048)) as client:
        big = message()
        big["data"]["message"]["conversation"] = "x" * 5000
        declared = await client.post("/webhooks/evolution", json=big, headers=AUTH)

        async def chunks() -> Any:  # no Content-Length: the limit applies while streaming
            yield orjson.dumps(big)

        streamed = await client.post("/webhooks/evolution", content=chunks(), headers=AUTH)
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert "2048" in declared.json()["detail"]


async def test_flooding_instance_gets_429(
    clean_database: Database, database_url: str, tenant: Any
) -> None:
    settings = make_settings(
        database_url, webhook_rate_per_instance=0.01, webhook_burst_per_instance=3
    )
    async with running_service(settings) as client:
        statuses = [
            (
                await client.post("/webhooks/evolution", json=message(f"M{n}"), headers=AUTH)
            ).status_code
            for n in range(5)
        ]
    assert statuses == [200, 200, 200, 429, 429]


# -- database outage --------------------------------------------------------------------------------


async def test_database_down_gives_503_then_recovers_by_itself(
    postgres: EmbeddedPostgres, clean_database: Database, database_url: str, tenant: Any
) -> None:
    async with running_service(make_settings(database_url)) as client:
        assert (
            await client.post("/webhooks/evolution", json=message("BEFORE"), headers=AUTH)
        ).status_code == 200
        await asyncio.to_thread(postgres.stop)
        try:
            down = await client.post("/webhooks/evolution", json=message("DURING"), headers=AUTH)
            ready = await client.get("/health/ready")
            alive = await client.get("/health")
        finally:
            await asyncio.to_thread(postgres.restart)
        assert down.status_code == 503
        assert down.headers["Retry-After"]
        assert (ready.status_code, alive.status_code) == (503, 200)

        async def accepted() -> bool:
            response = await client.post(
                "/webhooks/evolution", json=message("DURING"), headers=AUTH
            )
            return response.status_code == 200

        await wait_until(accepted, within=30)
        assert (await client.get("/health/ready")).status_code == 200
    await clean_database.engine.dispose()  # the test's own pool saw the restart too
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 2


async def test_readiness_reports_the_schema_revision(service: httpx.AsyncClient) -> None:
    response = await service.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["migrations"] == migrate.head_revision()


# -- property: no payload makes the server fail -------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
EVENTS = [
    "messages.upsert",
    "send.message",
    "messages.edited",
    "messages.delete",
    "messages.update",
    "groups.upsert",
    "group-participants.update",
    "connection.update",
    "whatever",
]
MESSAGE_KEYS = [
    "conversation",
    "extendedTextMessage",
    "imageMessage",
    "audioMessage",
    "reactionMessage",
    "ephemeralMessage",
    "editedMessage",
    "protocolMessage",
    "pollCreationMessage",
    "base64",
]
data_values = (
    st.fixed_dictionaries(
        {},
        optional={
            "key": st.fixed_dictionaries(
                {},
                optional={
                    "remoteJid": st.sampled_from(
                        [GROUP, "status@broadcast", "5511@s.whatsapp.net", ""]
                    )
                    | json_values,
                    "id": st.text(min_size=0, max_size=140) | json_values,
                    "fromMe": json_values,
                    "participant": st.sampled_from(["5511999:3@s.whatsapp.net", "1@lid"])
                    | json_values,
                },
            ),
            "message": st.dictionaries(st.sampled_from(MESSAGE_KEYS), json_values, max_size=3)
            | json_values,
            "messageTimestamp": json_values
            | st.fixed_dictionaries({"low": json_values, "high": json_values}),
            "pushName": json_values,
            "type": st.sampled_from(["MESSAGE_EDIT", "REVOKE", 0, 14]) | json_values,
            "editedMessage": json_values,
        },
    )
    | json_values
)
bodies = (
    st.fixed_dictionaries(
        {
            "event": st.sampled_from(EVENTS) | json_values,
            "instance": st.sampled_from(["acme-support", ""]) | json_values,
            "data": data_values,
        }
    )
    | json_values
)


@pytest.fixture(scope="module")
def fuzz_server(database_url: str) -> Iterator[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE alteracoes_pendentes, uso_tokens, resumos, mensagens, grupos, usuarios CASCADE"
        )
        tenant_id = conn.execute(
            "INSERT INTO usuarios (instancia) VALUES ('acme-support') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo) VALUES (%s, %s, true)",
            (GROUP, tenant_id),
        )
    with serve_in_thread(create_app(make_settings(database_url))) as base_url:
        yield base_url


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_no_generated_payload_yields_a_server_error(fuzz_server: str, body: Any) -> None:
    # The global webhook's token: valid whatever instance the generated body names.
    response = httpx.post(
        f"{fuzz_server}/webhooks/evolution?token={GLOBAL}", content=orjson.dumps(body), timeout=10
    )
    assert response.status_code in (200, 400, 422), response.text
