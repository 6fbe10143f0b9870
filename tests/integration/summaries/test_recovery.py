"""Summaries that survive failures: a rate-limited LLM call is retried, a summary generated
before a crash is sent without paying for it again, and a scheduled summary claimed by a process
that died is still sent."""

from __future__ import annotations

import uuid

import httpx
import procrastinate
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.engine import Database
from tests.conftest import running_service, wait_until
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

from .conftest import (
    SUMMARY,
    finished,
    group_with_messages,
    post,
    resumo_command,
    summaries,
    summary_settings,
)


async def test_rate_limited_llm_is_retried(
    service: httpx.AsyncClient, clean_database: Database, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    await group_with_messages(clean_database)
    llm.fail_next("/chat/completions", 429, retry_after=1)
    await post(service, resumo_command())
    await wait_until(lambda: finished(clean_database), within=40)
    assert [r.status for r in llm.requests_to("/chat/completions")] == [429, 200]
    assert (await summaries(clean_database))[0]["status"] == "enviado"


async def test_summary_generated_before_a_crash_is_sent_without_paying_again(
    service: httpx.AsyncClient,
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> None:
    tenant, group = await group_with_messages(clean_database)
    summary_id = uuid.uuid4()
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO resumos (id, grupo_id, usuario_id, status, origem, conteudo)"
                " VALUES (:id, :g, :t, 'pendente', 'sob_demanda', 'já gerado')"
            ),
            {"id": summary_id, "g": group.id, "t": tenant.id},
        )
    # Another process's view of the queue (as a second API replica would defer the job).
    other_process = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=database_url)
    )
    async with other_process.open_async():
        await other_process.configure_task("summarize", queue="summaries").defer_async(
            summary_id=str(summary_id)
        )
    await wait_until(lambda: finished(clean_database), within=30)
    assert llm.completions == []
    assert "já gerado" in evolution.sent[0].text


async def test_a_scheduled_summary_claimed_by_a_process_that_died_is_still_sent(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    """The claim (the resumos row) committed, the job never queued: the tick finds and sends it."""
    tenant, group = await group_with_messages(clean_database)
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia,"
                " created_at) VALUES (:g, :t, 'pendente', 'agendado', current_date,"
                " now() - interval '5 minutes')"
            ),
            {"g": group.id, "t": tenant.id},
        )
    settings = summary_settings(database_url, evolution, llm)
    async with running_service(settings, Roles(worker=True)):
        await wait_until(lambda: finished(clean_database), within=90)
    [row] = await summaries(clean_database)
    assert (row["status"], row["origem"], row["conteudo"]) == ("enviado", "agendado", SUMMARY)
    assert len(evolution.sent) == 1
