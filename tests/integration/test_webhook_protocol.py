"""The webhook's HTTP protocol with Evolution: status codes, limits, outages, fuzzing (the
credentials: test_webhook_auth.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intellizap.app import create_app
from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.db.engine import Database
from intellizap.ingest.credentials import global_token
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
GLOBAL = global_token(WEBHOOK_SECRET)  # the global webhook's token: valid for every instance


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
