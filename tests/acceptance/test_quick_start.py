"""The README's quick start: `intellizap serve` on a fresh directory, with nothing but the embedded
PostgreSQL, ingests webhooks, summarises on demand, stops cleanly on SIGTERM and keeps its data
across restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from intellizap.db.embedded import EmbeddedPostgres
from intellizap.db.engine import Database
from tests.conftest import WEBHOOK_SECRET, free_port, load_fixture, wait_until, webhook_headers
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

GROUP = "120363401234567890@g.us"
SUMMARY = "📌 *Principais assuntos*\n• Entrega confirmada para sexta."


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = SUMMARY
        yield fake


@asynccontextmanager
async def serve(
    workdir: Path, evolution: FakeEvolution, llm: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    """`intellizap serve` as a user runs it: no DATABASE_URL, data under ./.intellizap/."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        EVOLUTION_API_URL=evolution.url,
        EVOLUTION_API_KEY="evolution-global-key-123456",
        OPENAI_BASE_URL=llm.url,
        OPENAI_API_KEY="sk-platform-key-0123456789abcdef",
        SEND_MIN_INTERVAL_SECONDS="0",
        JOB_POLL_SECONDS="0.2",
        LOG_LEVEL="WARNING",
    )
    log_file = workdir / "serve.log"
    with log_file.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "intellizap",
            "serve",
            "--port",
            str(port),
            cwd=workdir,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def ready() -> bool:
                if process.returncode is not None:
                    raise AssertionError(f"serve exited: {log_file.read_text()[-2000:]}")
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, within=90)
            yield client
        process.send_signal(signal.SIGTERM)
        # A requested stop is a clean exit: status 0 (a hang or a crash would fail here).
        assert await asyncio.wait_for(process.wait(), 40) == 0, log_file.read_text()[-2000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def text_message(message_id: str, body: str, *, from_me: bool = False) -> dict[str, object]:
    webhook = load_fixture("messages.upsert.text.group.json")
    webhook["data"]["key"].update(id=message_id, remoteJid=GROUP, fromMe=from_me)
    webhook["data"]["message"] = {"conversation": body}
    webhook["data"]["messageTimestamp"] = int(time.time())
    return webhook


async def test_serve_runs_the_whole_product_on_a_fresh_directory(
    tmp_path: Path, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    headers = webhook_headers()
    async with serve(tmp_path, evolution, llm) as client:
        assert (tmp_path / ".intellizap" / "pgdata").is_dir()
        # The operator's side of the set-up: the frontend would write these rows.
        embedded = EmbeddedPostgres(tmp_path / ".intellizap")
        database = Database(await asyncio.to_thread(embedded.start), pool_size=1)
        try:
            instance = load_fixture("messages.upsert.text.group.json")["instance"]
            tenant = await create_tenant(database, instance)
            await create_group(database, tenant, GROUP)
            for n in range(6):
                response = await client.post(
                    "/webhooks/evolution",
                    json=text_message(f"QS{n}", f"mensagem {n}"),
                    headers=headers,
                )
                assert response.status_code == 200, response.text
            response = await client.post(
                "/webhooks/evolution",
                json=text_message("QSCMD", "/resumo", from_me=True),
                headers=headers,
            )
            assert response.status_code == 200

            async def summary_sent() -> bool:
                sent = "SELECT count(*) FROM resumos WHERE status = 'enviado'"
                return await count(database, sent) == 1

            await wait_until(summary_sent, within=60)
            assert [SUMMARY in sent.text for sent in evolution.sent] == [True]
        finally:
            await database.dispose()
            await asyncio.to_thread(embedded.release)
    # The embedded server stopped with the service (the last process using it).
    assert not (tmp_path / ".intellizap" / "pgdata" / "postmaster.pid").exists()

    # Stopped and started again on the same directory: the data is still there.
    async with serve(tmp_path, evolution, llm) as client:
        embedded = EmbeddedPostgres(tmp_path / ".intellizap")
        database = Database(await asyncio.to_thread(embedded.start), pool_size=1)
        try:
            async with database.session() as session:
                stored = (
                    await session.execute(
                        text("SELECT count(*) FROM mensagens WHERE id_externo LIKE 'QS%'")
                    )
                ).scalar_one()
            assert stored == 7
        finally:
            await database.dispose()
            await asyncio.to_thread(embedded.release)
            await asyncio.to_thread(embedded.release)
