"""Jobs survive what production throws at them: kill -9, SIGTERM, a PostgreSQL restart."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import IO, Any

import pytest
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.db.engine import Database
from tests.conftest import running_service, wait_until, webhook_headers
from tests.factories import count
from tests.fakes.audio import voice_note
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.integration.test_transcription import (
    AUDIO_ID,
    TRANSCRIPT,
    post,
    stored_text,
    tenant_with_transcription,
    voice_note_webhook,
    worker_settings,
)


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.transcript = TRANSCRIPT
        yield fake


def start_worker(
    database_url: str,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
    log_file: IO[bytes] | None = None,
    **settings: str,
) -> subprocess.Popen[bytes]:
    """`intellizap worker` as its own process, configured like a production replica;
    ``settings`` adds environment variables, ``log_file`` receives its log lines (stdout)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "EVOLUTION_API_URL": evolution.url,
        "EVOLUTION_API_KEY": "evolution-global-key-123456",
        "OPENAI_BASE_URL": openai_fake.url,
        "OPENAI_API_KEY": "sk-platform-key-0123456789abcdef",
        "SEND_MIN_INTERVAL_SECONDS": "0",
        "JOB_POLL_SECONDS": "0.2",
        "WORKER_HEARTBEAT_SECONDS": "0.5",
        "STALLED_JOB_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "intellizap", "worker"],
        env=env,
        stdout=log_file if log_file is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def sent(evolution: FakeEvolution, n: int = 1) -> bool:
    return len(evolution.sent) >= n


async def test_job_of_a_worker_killed_mid_job_completes_once_on_another_worker(
    clean_database: Database, database_url: str, evolution: FakeEvolution, openai_fake: FakeOpenAI
) -> None:
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    gate = openai_fake.block("/audio/transcriptions")
    first = start_worker(database_url, evolution, openai_fake)
    second: subprocess.Popen[bytes] | None = None
    try:
        async with running_service(worker_settings(database_url, evolution, openai_fake)) as api:
            await post(api, voice_note_webhook())
        assert await asyncio.to_thread(gate.wait_arrived, 30), "the worker never called Whisper"
        first.kill()  # SIGKILL: no clean-up, no goodbye
        first.wait(10)
        gate.release()
        second = start_worker(database_url, evolution, openai_fake)
        await wait_until(lambda: sent(evolution), within=60)
        await asyncio.sleep(1)  # a second (duplicate) reply would show up by now
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(15)
    assert await stored_text(clean_database) == (TRANSCRIPT, None)
    assert len(evolution.sent) == 1
    assert await count(clean_database, "SELECT count(*) FROM uso_tokens") == 1
    assert len(openai_fake.requests_to("/audio/transcriptions")) == 2  # the killed call, the re-run


async def test_sigterm_lets_the_running_job_finish(
    clean_database: Database, database_url: str, evolution: FakeEvolution, openai_fake: FakeOpenAI
) -> None:
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    gate = openai_fake.block("/audio/transcriptions")
    worker = start_worker(database_url, evolution, openai_fake)
    try:
        async with running_service(worker_settings(database_url, evolution, openai_fake)) as api:
            await post(api, voice_note_webhook())
        assert await asyncio.to_thread(gate.wait_arrived, 30)
        worker.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        gate.release()
        exit_code = await asyncio.to_thread(worker.wait, 30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert exit_code == 0
    assert await stored_text(clean_database) == (TRANSCRIPT, None)


async def test_worker_keeps_working_after_postgresql_restarts(
    postgres: EmbeddedPostgres,
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    settings = worker_settings(database_url, evolution, openai_fake)
    async with running_service(settings, Roles(worker=True)) as client:
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(1)
        await asyncio.to_thread(postgres.restart)

        async def accepted() -> bool:
            response = await client.post(
                "/webhooks/evolution",
                json=voice_note_webhook(),
                headers=webhook_headers(secret=settings.webhook_secret.get_secret_value()),  # type: ignore[union-attr]
            )
            return response.status_code == 200

        await wait_until(accepted, within=30)
        await wait_until(lambda: sent(evolution), within=60)
        assert (await client.get("/health/ready")).status_code == 200
    await clean_database.engine.dispose()
    assert await stored_text(clean_database) == (TRANSCRIPT, None)


async def test_sends_of_one_instance_are_spaced_and_other_instances_are_not_blocked(
    clean_database: Database, database_url: str, evolution: FakeEvolution, openai_fake: FakeOpenAI
) -> None:
    interval = 1.0
    tenant, _ = await tenant_with_transcription(clean_database)
    other = await _second_tenant(clean_database)
    ids = [f"PACE{n}" for n in range(3)]
    for message_id in [*ids, "OTHER0"]:
        evolution.add_media(message_id, voice_note(2))
    settings = worker_settings(
        database_url, evolution, openai_fake, send_min_interval_seconds=interval
    )
    async with running_service(settings, Roles(worker=True)) as client:
        for message_id in ids:
            await post(client, _voice(message_id, "acme-support"))
        await post(client, _voice("OTHER0", other))
        await wait_until(lambda: sent(evolution, 4), within=60)
    by_instance: dict[str, list[float]] = {}
    for item in evolution.sent:
        by_instance.setdefault(item.instance, []).append(item.at)
    acme = sorted(by_instance["acme-support"])
    assert len(acme) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(acme)]
    assert all(gap >= interval * 0.95 for gap in gaps), gaps
    # The other instance's reply did not queue behind the first instance's pacing.
    assert by_instance[other][0] < acme[-1]
    assert tenant is not None


async def _second_tenant(database: Database) -> str:
    async with database.session() as session:
        tenant_id = (
            await session.execute(
                text(
                    "INSERT INTO usuarios (instancia, transcricao_ativa) VALUES ('beta-store', true) RETURNING id"
                )
            )
        ).scalar_one()
        await session.execute(
            text(
                "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, transcricao_ativa)"
                " VALUES ('120363400000000001@g.us', :t, true, true)"
            ),
            {"t": tenant_id},
        )
    return "beta-store"


def _voice(message_id: str, instance: str) -> dict[str, Any]:
    body = voice_note_webhook(seconds=2)
    body["instance"] = instance
    body["data"]["key"]["id"] = message_id
    if instance != "acme-support":
        body["data"]["key"]["remoteJid"] = "120363400000000001@g.us"
    return body
