"""Summaries on demand end to end: the owner's ``/resumo`` → job → fake LLM → paced send →
``resumos`` row and metered tokens; too few messages; one summary per group at a time; members
only when the tenant allows it."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text

from intellizap.db.engine import Database
from tests.conftest import wait_until
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

from .conftest import (
    GROUP,
    PLATFORM_KEY,
    SUMMARY,
    finished,
    group_with_messages,
    post,
    resumo_command,
    summaries,
)


async def test_owner_resumo_command_summarises_sends_records_and_meters(
    service: httpx.AsyncClient, clean_database: Database, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    await group_with_messages(clean_database)
    await post(service, resumo_command())
    await wait_until(lambda: finished(clean_database), within=30)
    [row] = await summaries(clean_database)
    assert (row["status"], row["origem"], row["conteudo"], row["total_mensagens"]) == (
        "enviado",
        "sob_demanda",
        SUMMARY,
        8,
    )
    assert row["data_envio"] is not None
    [call] = llm.completions
    assert call.api_key == PLATFORM_KEY
    user = call.messages[-1]["content"]
    assert "mensagem número 0" in user
    assert "mensagem número 7" in user
    assert "/resumo" not in user
    [sent] = evolution.sent
    assert sent.number == GROUP
    assert sent.text.startswith("📝 *Resumo do grupo*")
    assert SUMMARY in sent.text
    async with clean_database.session() as session:
        usage = (
            await session.execute(
                text("SELECT tipo, chave, tokens_entrada, tokens_saida, resumo_id FROM uso_tokens")
            )
        ).one()
    assert (usage[0], usage[1], usage[4]) == ("resumo", "plataforma", row["id"])
    assert row["tokens_usados"] == usage[2] + usage[3] > 0


async def test_too_few_messages_sends_nothing_and_says_why(
    service: httpx.AsyncClient, clean_database: Database, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    await group_with_messages(clean_database, n=2)
    await post(service, resumo_command())
    await wait_until(lambda: finished(clean_database), within=30)
    [row] = await summaries(clean_database)
    assert row["status"] == "erro"
    assert "mínimo 5" in row["erro"]
    assert llm.completions == []
    assert evolution.sent == []


async def test_resumo_is_rate_limited_per_group_and_members_are_ignored_by_default(
    service: httpx.AsyncClient, clean_database: Database, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    await group_with_messages(clean_database)
    await post(service, resumo_command(from_me=False, message_id="MEMBER1"))
    await asyncio.sleep(0.5)
    assert await summaries(clean_database) == []
    await post(service, resumo_command(message_id="OWNER1"))
    await post(service, resumo_command(message_id="OWNER2"))
    await wait_until(lambda: finished(clean_database), within=30)
    assert len(await summaries(clean_database)) == 1
    assert len(evolution.sent) == 1


async def test_members_may_ask_when_the_tenant_allows_it(
    service: httpx.AsyncClient, clean_database: Database, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    await group_with_messages(clean_database, members_can_summarize=True)
    await post(service, resumo_command(from_me=False, message_id="MEMBER1"))
    await wait_until(lambda: finished(clean_database), within=30)
    assert (await summaries(clean_database))[0]["status"] == "enviado"
