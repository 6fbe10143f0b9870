"""Sends wait for their pace without holding a worker slot, and outrank the summaries waiting
to be written. A real worker (in process) against the fake Evolution and fake OpenAI."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.engine import Database
from tests.conftest import running_service, wait_until, webhook_headers
from tests.factories import count, create_group, create_tenant
from tests.fakes.audio import voice_note
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.integration.test_sending import (
    delivered,
    llm,
    queue_summaries,
    send_settings,
    sent_by,
)
from tests.integration.test_transcription import voice_note_webhook

__all__ = ["llm"]  # the fixture


async def test_sends_outrank_summaries_waiting_to_be_written(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    summary_ids = []
    for n in range(3):
        tenant = await create_tenant(clean_database, f"loja-{n}")
        group = await create_group(clean_database, tenant, f"12036340000000000{n}@g.us")
        async with clean_database.session() as session:
            await session.execute(
                text(
                    'INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor",'
                    " data_mensagem, tipo) SELECT :g, 'M' || i, 'mensagem ' || i, 'Ana',"
                    " now() - make_interval(secs => 100 - i), 'texto' FROM generate_series(1, 8) i"
                ),
                {"g": group.id},
            )
            summary_ids.append(
                (
                    await session.execute(
                        text(
                            "INSERT INTO resumos (grupo_id, usuario_id, status, origem)"
                            " VALUES (:g, :t, 'pendente', 'sob_demanda') RETURNING id"
                        ),
                        {"g": group.id, "t": tenant.id},
                    )
                ).scalar_one()
            )
    await queue_summaries(database_url, *summary_ids)  # all waiting before the worker starts
    settings = send_settings(database_url, evolution, llm, worker_concurrency=1)
    async with running_service(settings, Roles(worker=True)):
        for summary_id in summary_ids:
            await wait_until(lambda: delivered(clean_database, summary_id), within=60)  # noqa: B023

    completions = llm.requests_to("/chat/completions")
    assert len(completions) == 3
    # The first summary's send went out before the second summary was written.
    assert evolution.sent[0].at < completions[1].at


async def test_pacing_an_instance_holds_no_worker_slot(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    """Two slots, two instances each with several replies paced 30 s apart: a third instance's
    voice note is transcribed and answered meanwhile, and no slot is taken by a waiting send."""
    instances = ["loja-a", "loja-b", "loja-c"]
    for n, instance in enumerate(instances):
        tenant = await create_tenant(clean_database, instance)
        async with clean_database.session() as session:
            await session.execute(
                text("UPDATE usuarios SET transcricao_ativa = true WHERE id = :id"),
                {"id": tenant.id},
            )
        await create_group(clean_database, tenant, _group(n), transcription_enabled=True)
        for m in range(3):
            evolution.add_media(f"AUDIO-{n}-{m}", voice_note(2))
    settings = send_settings(
        database_url, evolution, llm, worker_concurrency=2, send_min_interval_seconds=30
    )
    async with running_service(settings, Roles(worker=True)) as service:
        for n in range(2):
            for m in range(3):
                await _post(service, _voice_note(instances[n], n, m))
        await wait_until(lambda: sent_by(evolution, "loja-a", "loja-b"), within=30)
        await _post(service, _voice_note("loja-c", 2, 0))
        await wait_until(lambda: sent_by(evolution, "loja-c"), within=20)
        occupancy = [await _sends_running(clean_database) for _ in range(20)]
        queued = await count(
            clean_database,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'send_text'"
            " AND status = 'todo'",
        )
        rescheduled = await count(
            clean_database,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'send_text'"
            " AND status = 'todo' AND scheduled_at > now()",
        )

    by_instance = [item.instance for item in evolution.sent]
    assert sorted(by_instance) == ["loja-a", "loja-b", "loja-c"]  # a and b wait for their pace
    assert queued == 4  # their second and third replies
    assert rescheduled == 2  # the next of each waits for its time, the third behind it
    assert max(occupancy) == 0  # and none of them occupies a slot while it waits


async def _sends_running(database: Database) -> int:
    await asyncio.sleep(0.05)
    return await count(
        database,
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'send_text' AND status = 'doing'",
    )


def _group(n: int) -> str:
    return f"12036340000000001{n}@g.us"


def _voice_note(instance: str, n: int, m: int) -> dict[str, Any]:
    body = voice_note_webhook(seconds=2)
    body["instance"] = instance
    body["data"]["key"].update(id=f"AUDIO-{n}-{m}", remoteJid=_group(n))
    return body


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post(
        "/webhooks/evolution", json=body, headers=webhook_headers(body["instance"])
    )
    assert response.status_code == 200, response.text
