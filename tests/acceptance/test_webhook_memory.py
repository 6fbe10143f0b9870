"""Peak memory of the API process under concurrent large unauthenticated bodies.

Issue 9: three concurrent 28 MiB bodies without credentials raised the API's peak memory by
673 MiB, because each was read and parsed before its 401. Here many more such callers hit a
real ``intellizap api`` process at once — some without credentials (the body's ``apikey`` has
to be checked, so their bodies are read under the unauthenticated budget), some with wrong ones
(refused before their body is read) — and the process's peak resident set (``VmHWM``) may grow
by at most the documented bound: the unauthenticated budget (one body always fits) plus slack
for connection buffers. A resource property, not a timing one.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from intellizap.db.engine import Database
from tests.conftest import WEBHOOK_SECRET, free_port, load_fixture, wait_until, webhook_headers
from tests.factories import create_group, create_tenant

MIB = 1024 * 1024
BODY_BYTES = 28 * MIB
CLIENTS_WITHOUT_CREDENTIALS = 8
CLIENTS_WITH_WRONG_CREDENTIALS = 8
UNAUTHENTICATED_BUDGET = 32 * MIB  # the default WEBHOOK_UNAUTHENTICATED_BUDGET_BYTES
SLACK = 24 * MIB  # allocator rounding, the sockets' buffers, the interpreter's own growth


def peak_rss(pid: int) -> int:
    """The process's peak resident set size, in bytes (Linux ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture
def api_process(database_url: str, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """``intellizap api`` as its own process with the default limits."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "EVOLUTION_API_KEY": "evolution-global-key-123456",  # so the apikey method applies
        "LOG_LEVEL": "WARNING",
        "TENANT_CACHE_SECONDS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "intellizap", "api", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process.pid, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def attack_body() -> bytes:
    body = load_fixture("messages.upsert.text.group.json")
    body["apikey"] = "a-guess-at-the-instance-token"
    body["data"]["message"] = {"conversation": ""}
    encoded = orjson.dumps(body)
    # A 28 MiB text (what a base64 voice note looks like to the parser).
    body["data"]["message"]["conversation"] = "A" * (BODY_BYTES - len(encoded))
    return orjson.dumps(body)


async def send(base_url: str, body: bytes, headers: dict[str, str]) -> int | str:
    """POST ``body`` the way an attacker does: keep sending until the server answers."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = [
        "POST /webhooks/evolution HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())

    async def push() -> None:
        view = memoryview(body)
        for start in range(0, len(body), 256 * 1024):
            writer.write(view[start : start + 256 * 1024])
            await writer.drain()

    pushing = asyncio.create_task(push())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 120)
        return int(status_line.split()[1]) if status_line else "closed"
    except (ConnectionError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        pushing.cancel()
        await asyncio.gather(pushing, return_exceptions=True)
        writer.close()


async def test_concurrent_large_unauthenticated_bodies_stay_within_the_memory_bound(
    clean_database: Database, api_process: tuple[int, str]
) -> None:
    pid, base_url = api_process
    tenant = await create_tenant(clean_database, "acme-support", evolution_token="instance-tok")
    await create_group(clean_database, tenant, "120363401234567890@g.us")

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:

        async def up() -> bool:
            try:
                return (await client.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up, within=90)
        # Warm every path once (imports, pools, the first 401 and 503) before measuring.
        genuine = load_fixture("messages.upsert.text.group.json")
        assert (
            await client.post("/webhooks/evolution", json=genuine, headers=webhook_headers())
        ).status_code == 200
        for _ in range(3):
            await client.post("/webhooks/evolution", json={"apikey": "x", "instance": "y"})
    body = attack_body()
    wrong = {"X-Webhook-Instance": "acme-support", "X-Webhook-Secret": "guess"}
    before = peak_rss(pid)

    outcomes: list[Any] = await asyncio.gather(
        *(send(base_url, body, {}) for _ in range(CLIENTS_WITHOUT_CREDENTIALS)),
        *(send(base_url, body, wrong) for _ in range(CLIENTS_WITH_WRONG_CREDENTIALS)),
    )

    growth = peak_rss(pid) - before
    without, with_wrong = (
        outcomes[:CLIENTS_WITHOUT_CREDENTIALS],
        outcomes[CLIENTS_WITHOUT_CREDENTIALS:],
    )
    assert with_wrong == [401] * CLIENTS_WITH_WRONG_CREDENTIALS
    # Each body without credentials is either read and refused for its key (401), or finds
    # the unauthenticated budget full and is refused at once (503): never stored, never parsed.
    assert set(without) <= {401, 503}, without
    assert 401 in without
    print(f"peak RSS growth: {growth / MIB:.1f} MiB for {len(outcomes)} clients of 28 MiB")
    assert growth <= UNAUTHENTICATED_BUDGET + SLACK, f"{growth / MIB:.1f} MiB"
