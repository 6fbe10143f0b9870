"""Voice notes end to end: webhook → job → fake Evolution download → fake Whisper → reply + row."""

from __future__ import annotations

import base64
import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.engine import Database
from intellizap.settings import Settings
from tests.conftest import load_fixture, make_settings, running_service, wait_until, webhook_headers
from tests.factories import count, create_group, create_tenant
from tests.fakes.audio import voice_note
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

GROUP = "120363401234567890@g.us"
AUDIO_ID = "D4C3B2A1F0E9D8C7B6A5F4E3D2C1B0A9"
PLATFORM_KEY = "sk-platform-key-0123456789abcdef"
TENANT_KEY = "sk-tenant-own-key-0123456789abcdef"
TRANSCRIPT = "Pessoal, a reunião foi remarcada para quinta às dez."


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.transcript = TRANSCRIPT
        yield fake


def worker_settings(
    database_url: str, evolution: FakeEvolution, openai_fake: FakeOpenAI, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "evolution_api_url": evolution.url,
        "openai_base_url": openai_fake.url,
        "openai_api_key": PLATFORM_KEY,
        "evolution_api_key": "evolution-global-key-123456",
        "send_min_interval_seconds": 0,
        "send_outcome_wait_seconds": 1,
        "job_poll_seconds": 0.2,
        "worker_heartbeat_seconds": 1,
        "stalled_job_seconds": 3,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
async def service(
    clean_database: Database, database_url: str, evolution: FakeEvolution, openai_fake: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    settings = worker_settings(database_url, evolution, openai_fake)
    async with running_service(settings, Roles(worker=True)) as client:
        yield client


async def tenant_with_transcription(database: Database, **tenant_values: Any) -> Any:
    tenant = await create_tenant(database, "acme-support", **tenant_values)
    async with database.session() as session:
        await session.execute(
            text("UPDATE usuarios SET transcricao_ativa = true WHERE id = :id"), {"id": tenant.id}
        )
    group = await create_group(database, tenant, GROUP, transcription_enabled=True)
    return tenant, group


def voice_note_webhook(*, with_base64: bytes | None = None, seconds: int = 3) -> dict[str, Any]:
    body = copy.deepcopy(load_fixture("messages.upsert.audio.ptt.json"))
    key = body["data"]["key"]
    key.pop("remoteJidAlt", None)
    key.update(remoteJid=GROUP, participant="5511988880001@s.whatsapp.net")
    body["data"]["message"]["audioMessage"]["seconds"] = seconds
    if with_base64 is not None:
        body["data"]["message"]["base64"] = base64.b64encode(with_base64).decode()
    return body


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post(
        "/webhooks/evolution", json=body, headers=webhook_headers(body["instance"])
    )
    assert response.status_code == 200, response.text


async def stored_text(database: Database) -> tuple[str | None, str | None]:
    async with database.session() as session:
        row = (
            await session.execute(
                text("SELECT mensagem, transcricao_erro FROM mensagens WHERE id_externo = :id"),
                {"id": AUDIO_ID},
            )
        ).first()
    return (row[0], row[1]) if row else (None, None)


async def transcribed(database: Database) -> bool:
    return (await stored_text(database))[0] is not None


async def test_voice_note_is_transcribed_replied_quoting_the_audio_and_metered(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    await post(service, voice_note_webhook())

    async def replied() -> bool:
        return len(evolution.sent) == 1

    await wait_until(replied, within=20)
    assert await stored_text(clean_database) == (TRANSCRIPT, None)
    [sent] = evolution.sent
    assert sent.instance == "acme-support"
    assert sent.number == GROUP
    assert sent.text == f"🎙️ *Transcrição* (Ana Souza):\n{TRANSCRIPT}"
    assert sent.quoted_id == AUDIO_ID
    [download] = evolution.downloads
    assert download["body"]["message"]["key"]["id"] == AUDIO_ID
    assert "audioMessage" in download["body"]["message"]["message"]  # works without Evolution's DB
    [call] = openai_fake.transcriptions
    assert (call.api_key, call.model, call.language) == (PLATFORM_KEY, "whisper-1", "pt")
    assert call.filename.endswith(".ogg")
    async with clean_database.session() as session:
        usage = (
            await session.execute(
                text(
                    "SELECT tipo, modelo, chave, segundos_audio, mensagem_id IS NOT NULL FROM uso_tokens"
                )
            )
        ).all()
    assert len(usage) == 1
    assert usage[0][:3] == ("transcricao", "whisper-1", "plataforma")
    assert 2.5 < usage[0][3] < 3.5
    assert usage[0][4] is True
    assert await count(clean_database, "SELECT count(*) FROM audios_pendentes") == 0


async def test_duplicate_webhook_gives_one_transcription(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    for _ in range(3):
        await post(service, voice_note_webhook())
    await wait_until(lambda: _sent(evolution, 1), within=20)
    await post(service, voice_note_webhook())  # after completion too
    assert await transcribed(clean_database)
    assert len(openai_fake.transcriptions) == 1
    assert len(evolution.sent) == 1


async def _sent(evolution: FakeEvolution, n: int) -> bool:
    return len(evolution.sent) >= n


async def test_a_run_stopped_after_storing_the_transcript_is_finished_without_paying_twice(
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    """The state a worker leaves when it dies between committing the transcript and queueing the
    reply: the next run replies from the stored transcript and calls Whisper no more."""
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    settings = worker_settings(database_url, evolution, openai_fake)
    async with running_service(settings) as api:  # no worker: the job waits in the queue
        await post(api, voice_note_webhook(with_base64=voice_note(3)))
    async with clean_database.session() as session:
        await session.execute(
            text("UPDATE mensagens SET mensagem = :t WHERE id_externo = :id"),
            {"t": TRANSCRIPT, "id": AUDIO_ID},
        )
        await session.execute(text("UPDATE audios_pendentes SET base64 = NULL"))

    async with running_service(settings, Roles(worker=True)):
        await wait_until(lambda: _sent(evolution, 1), within=20)

    [reply] = evolution.sent
    assert TRANSCRIPT in reply.text
    assert reply.quoted_id == AUDIO_ID
    assert openai_fake.transcriptions == []
    assert evolution.requests_to("getBase64") == []
    assert await count(clean_database, "SELECT count(*) FROM audios_pendentes") == 0


async def test_base64_in_the_webhook_means_no_download(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    await tenant_with_transcription(clean_database)
    await post(service, voice_note_webhook(with_base64=voice_note(3)))
    await wait_until(lambda: _sent(evolution, 1), within=20)
    assert evolution.downloads == []
    assert await stored_text(clean_database) == (TRANSCRIPT, None)


async def test_tenant_key_is_used_instead_of_the_platform_key(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    await tenant_with_transcription(clean_database, openai_key=TENANT_KEY)
    evolution.add_media(AUDIO_ID, voice_note(3))
    await post(service, voice_note_webhook())
    await wait_until(lambda: _sent(evolution, 1), within=20)
    assert [call.api_key for call in openai_fake.transcriptions] == [TENANT_KEY]
    async with clean_database.session() as session:
        assert (
            await session.execute(text("SELECT chave FROM uso_tokens"))
        ).scalar_one() == "propria"


async def test_invalid_tenant_key_is_a_recorded_permanent_failure(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    openai_fake.invalid_keys = {TENANT_KEY}
    await tenant_with_transcription(clean_database, openai_key=TENANT_KEY)
    evolution.add_media(AUDIO_ID, voice_note(3))
    await post(service, voice_note_webhook())

    async def failed() -> bool:
        # The reason is recorded before the job's failure is persisted: wait for both.
        return (await stored_text(clean_database))[1] is not None and await count(
            clean_database, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'"
        ) == 1

    await wait_until(failed, within=20)
    assert await stored_text(clean_database) == (
        None,
        "chave OpenAI do cliente recusada pelo provedor; atualize a chave",
    )
    # Never silently paid with the platform key, never retried, nothing sent.
    assert {call.api_key for call in openai_fake.requests_to("/audio/transcriptions")} == {
        TENANT_KEY
    }
    assert len(openai_fake.requests_to("/audio/transcriptions")) == 1
    assert evolution.sent == []
    assert (
        await count(
            clean_database, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'"
        )
        == 1
    )
    assert await count(clean_database, "SELECT count(*) FROM audios_pendentes") == 0


async def test_rate_limit_is_retried_after_the_providers_delay(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    openai_fake.fail_next("/audio/transcriptions", 429, retry_after=1)
    await post(service, voice_note_webhook())
    await wait_until(lambda: _sent(evolution, 1), within=30)
    statuses = [r.status for r in openai_fake.requests_to("/audio/transcriptions")]
    assert statuses == [429, 200]
    assert await stored_text(clean_database) == (TRANSCRIPT, None)


async def test_evolution_server_error_is_retried(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    evolution.fail_next("getBase64FromMediaMessage", 500)
    evolution.fail_next("sendText", 502)
    await post(service, voice_note_webhook())
    await wait_until(lambda: _sent(evolution, 1), within=30)
    assert [r.status for r in evolution.requests_to("getBase64FromMediaMessage")] == [500, 201]
    assert [r.status for r in evolution.requests_to("sendText")] == [502, 201]
    # The 502 might have come after the message went out: it was looked for before the resend.
    assert evolution.searches


async def test_too_long_voice_note_gets_a_short_reply_and_no_transcription(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    await tenant_with_transcription(clean_database)
    await post(service, voice_note_webhook(seconds=3600))
    await wait_until(lambda: _sent(evolution, 1), within=20)
    [sent] = evolution.sent
    assert "não foi transcrito" in sent.text
    assert sent.quoted_id == AUDIO_ID
    assert openai_fake.transcriptions == []
    assert evolution.downloads == []
    assert (await stored_text(clean_database))[1] == "áudio de 60.0 min acima do limite de 15 min"


async def test_audio_over_the_upload_limit_is_split_and_the_parts_joined(
    clean_database: Database, database_url: str, evolution: FakeEvolution, openai_fake: FakeOpenAI
) -> None:
    await tenant_with_transcription(clean_database)
    audio = voice_note(25)
    evolution.add_media(AUDIO_ID, audio)
    parts = iter(["primeira parte", "segunda parte", "terceira parte"])
    openai_fake.transcript = lambda filename, data: next(parts)
    settings = worker_settings(
        database_url,
        evolution,
        openai_fake,
        transcription_max_upload_bytes=len(audio) // 2,
        transcription_chunk_seconds=10,
    )
    async with running_service(settings, Roles(worker=True)) as client:
        await post(client, voice_note_webhook(seconds=25))
        await wait_until(lambda: _sent(evolution, 1), within=30)
    calls = openai_fake.transcriptions
    assert len(calls) == 3
    assert all(call.size <= len(audio) // 2 and call.filename.endswith(".ogg") for call in calls)
    assert await stored_text(clean_database) == (
        "primeira parte segunda parte terceira parte",
        None,
    )


async def test_transcription_off_for_the_group_queues_nothing(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    async with clean_database.session() as session:
        await session.execute(
            text("UPDATE usuarios SET transcricao_ativa = true WHERE id = :id"), {"id": tenant.id}
        )
    await create_group(clean_database, tenant, GROUP, transcription_enabled=False)
    await post(service, voice_note_webhook())
    assert (
        await count(
            clean_database,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'transcribe_audio'",
        )
        == 0
    )
    assert await count(clean_database, "SELECT count(*) FROM mensagens WHERE tipo = 'audio'") == 1


async def test_a_refused_platform_key_is_not_blamed_on_the_customer(
    service: httpx.AsyncClient,
    clean_database: Database,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    openai_fake.invalid_keys = {PLATFORM_KEY}
    await tenant_with_transcription(clean_database)
    evolution.add_media(AUDIO_ID, voice_note(3))
    await post(service, voice_note_webhook())

    async def failed() -> bool:
        # The reason is recorded before the job's failure is persisted: wait for both.
        return (await stored_text(clean_database))[1] is not None and await count(
            clean_database, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'"
        ) == 1

    await wait_until(failed, within=20)
    reason = (await stored_text(clean_database))[1]
    assert reason is not None
    assert "plataforma" in reason
    assert "não da sua conta" in reason
    assert "cliente" not in reason
    assert "atualize a chave" not in reason
