"""Reject before paying: the body of an unauthenticated webhook is not read when it cannot
authenticate it, and bodies read only to check their ``apikey`` share a small budget.

These talk raw HTTP/1.1 over a socket, so a request can stop after its headers, or halfway
through its body, exactly as an attacker's would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from intellizap.db.engine import Database
from tests.conftest import load_fixture, make_settings, running_service, webhook_headers
from tests.factories import count, create_group, create_tenant

GROUP = "120363401234567890@g.us"
ANSWER_WITHIN = 10.0  # a guard against hanging, not a timing assertion


@dataclass
class Answer:
    status: int
    headers: dict[str, str]


class RawRequest:
    """One HTTP/1.1 POST written by hand: headers first, the body when (and if) asked."""

    def __init__(self, base_url: str, headers: dict[str, str], length: int) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._headers = headers
        self._length = length
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send_head(self, path: str = "/webhooks/evolution") -> None:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        lines = [f"POST {path} HTTP/1.1", f"Host: {self._host}", "Content-Type: application/json"]
        lines += [f"Content-Length: {self._length}"]
        lines += [f"{name}: {value}" for name, value in self._headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()

    async def send(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def answer(self) -> Answer:
        assert self._reader is not None
        status_line = await asyncio.wait_for(self._reader.readline(), ANSWER_WITHIN)
        headers = {}
        while (line := await asyncio.wait_for(self._reader.readline(), ANSWER_WITHIN)) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return Answer(int(status_line.split()[1]), headers)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


@asynccontextmanager
async def raw(base_url: str, headers: dict[str, str], length: int) -> AsyncIterator[RawRequest]:
    request = RawRequest(base_url, headers, length)
    try:
        yield request
    finally:
        await request.close()


@pytest.fixture
async def tenant(clean_database: Database) -> Any:
    tenant = await create_tenant(clean_database, "acme-support", evolution_token="instance-token-1")
    await create_group(clean_database, tenant, GROUP)
    return tenant


def padded_body(size: int, apikey: str | None = "not-the-token") -> bytes:
    """A webhook of exactly ``size`` bytes (a long text message) with the given ``apikey``."""
    body = load_fixture("messages.upsert.text.group.json")
    body["apikey"] = apikey
    body["data"]["message"] = {"conversation": ""}
    padding = size - len(orjson.dumps(body))
    assert padding >= 0
    body["data"]["message"]["conversation"] = "x" * padding
    encoded = orjson.dumps(body)
    assert len(encoded) == size
    return encoded


TWENTY_EIGHT_MIB = 28 * 1024 * 1024


@pytest.mark.parametrize(
    ("settings", "headers"),
    [
        ({}, {"X-Webhook-Instance": "acme-support", "X-Webhook-Secret": "wrong"}),
        ({}, {"X-Webhook-Secret": "whatever"}),
        ({}, {"X-Webhook-Instance": "acme-support", "Authorization": "Bearer not.a.jwt"}),
        ({"webhook_apikey_auth": False}, {}),
    ],
    ids=["wrong-secret", "secret-without-instance", "bad-jwt", "no-credentials-apikey-off"],
)
async def test_a_request_that_cannot_authenticate_gets_401_before_sending_its_body(
    clean_database: Database,
    database_url: str,
    tenant: Any,
    settings: dict[str, Any],
    headers: dict[str, str],
) -> None:
    async with (
        running_service(make_settings(database_url, **settings)) as client,
        raw(str(client.base_url), headers, TWENTY_EIGHT_MIB) as request,
    ):
        await request.send_head()  # not one byte of the 28 MiB
        answer = await request.answer()
    assert answer.status == 401


async def test_an_oversized_declared_body_gets_413_before_it_is_sent(
    service: httpx.AsyncClient, tenant: Any
) -> None:
    async with raw(str(service.base_url), webhook_headers(), 64 * 1024 * 1024) as request:
        await request.send_head()
        answer = await request.answer()
    assert answer.status == 413


async def test_bodies_read_only_for_their_apikey_share_a_budget_others_do_not_wait_for(
    clean_database: Database, database_url: str, tenant: Any
) -> None:
    size = 256 * 1024
    settings = make_settings(database_url, webhook_unauthenticated_budget_bytes=size)
    async with (
        running_service(settings) as client,
        raw(str(client.base_url), {}, size) as holder,
    ):
        body = padded_body(size)
        await holder.send_head()
        await holder.send(body[: size // 2])  # half sent: it holds the whole budget

        async def another_unauthenticated() -> Answer:
            async with raw(str(client.base_url), {}, 2048) as second:
                await second.send_head()
                await second.send(padded_body(2048))
                return await second.answer()

        # Until the server has read the holder's headers, another one still fits (and is
        # refused for its key); from then on, it is refused for room, at once.
        refused = await another_unauthenticated()
        deadline = asyncio.get_running_loop().time() + ANSWER_WITHIN
        while refused.status == 401 and asyncio.get_running_loop().time() < deadline:
            refused = await another_unauthenticated()
        # A request with the instance's credentials is not held up by unauthenticated ones.
        authenticated = await client.post(
            "/webhooks/evolution",
            json=load_fixture("messages.upsert.text.group.json"),
            headers=webhook_headers(),
        )

        await holder.send(body[size // 2 :])
        finished = await holder.answer()
        # Its bytes are given back: the next one is read (and refused for its wrong key).
        after = await client.post("/webhooks/evolution", content=padded_body(size))

    assert (refused.status, refused.headers["retry-after"]) == (503, "5")
    assert authenticated.json()["events"] == {"stored": 1}
    assert finished.status == 401
    assert after.status_code == 401
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 1


async def test_the_instance_token_in_the_body_still_authenticates_a_large_body(
    service: httpx.AsyncClient, tenant: Any, clean_database: Database
) -> None:
    response = await service.post(
        "/webhooks/evolution", content=padded_body(2 * 1024 * 1024, apikey="instance-token-1")
    )
    assert response.json()["events"] == {"stored": 1}
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 1


async def test_a_body_naming_a_key_that_is_not_the_bodys_own_is_refused(
    service: httpx.AsyncClient, tenant: Any, clean_database: Database
) -> None:
    """The raw scan only decides whether to parse; the parsed envelope decides."""
    body = orjson.loads(padded_body(4096, apikey="not-the-token"))
    body["data"]["pushName"] = '", "apikey": "instance-token-1'  # escaped inside a string
    body["data"]["nested"] = {"apikey": "instance-token-1"}  # a key, but not the envelope's
    response = await service.post("/webhooks/evolution", content=orjson.dumps(body))
    assert response.status_code == 401
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 0


async def test_an_unauthenticated_body_that_trickles_gets_408(
    clean_database: Database, database_url: str, tenant: Any
) -> None:
    settings = make_settings(database_url, webhook_unauthenticated_read_seconds=1)
    async with (
        running_service(settings) as client,
        raw(str(client.base_url), {}, 4096) as slow,
    ):
        await slow.send_head()
        await slow.send(b"{")
        answer = await slow.answer()
    assert answer.status == 408
