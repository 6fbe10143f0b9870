"""Who pays for a summary: the platform key within the tenant's monthly quota (refused before
calling the LLM once it is spent), the tenant's own key outside it, and a refused tenant key
recorded, never replaced by the platform's."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from intellizap.db.engine import Database
from tests.conftest import wait_until
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

from .conftest import (
    TENANT_KEY,
    finished,
    group_with_messages,
    post,
    resumo_command,
    summaries,
)


async def test_quota_exceeded_refuses_before_calling_the_llm(
    service: httpx.AsyncClient, clean_database: Database, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    tenant, _ = await group_with_messages(clean_database, monthly_token_quota=1000)
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, tokens_saida, chave)"
                " VALUES (:t, 'resumo', 'm', 900, 100, 'plataforma')"
            ),
            {"t": tenant.id},
        )
    await post(service, resumo_command())
    await wait_until(lambda: finished(clean_database), within=30)
    [row] = await summaries(clean_database)
    assert (row["status"], row["erro"]) == ("erro", "cota mensal de tokens excedida")
    assert llm.completions == []
    assert evolution.sent == []


async def test_own_key_is_not_subject_to_the_platform_quota(
    service: httpx.AsyncClient, clean_database: Database, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    tenant, _ = await group_with_messages(
        clean_database, monthly_token_quota=10, openai_key=TENANT_KEY
    )
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, chave)"
                " VALUES (:t, 'resumo', 'm', 500, 'plataforma')"
            ),
            {"t": tenant.id},
        )
    await post(service, resumo_command())
    await wait_until(lambda: finished(clean_database), within=30)
    assert (await summaries(clean_database))[0]["status"] == "enviado"
    assert [c.api_key for c in llm.completions] == [TENANT_KEY]
    async with clean_database.session() as session:
        assert (
            await session.execute(text("SELECT chave FROM uso_tokens WHERE resumo_id IS NOT NULL"))
        ).scalar_one() == "propria"


async def test_invalid_tenant_key_is_recorded_and_never_replaced_by_the_platform_key(
    service: httpx.AsyncClient, clean_database: Database, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    llm.invalid_keys = {TENANT_KEY}
    await group_with_messages(clean_database, openai_key=TENANT_KEY)
    await post(service, resumo_command())
    await wait_until(lambda: finished(clean_database), within=30)
    [row] = await summaries(clean_database)
    assert row["status"] == "erro"
    assert "chave OpenAI do cliente recusada" in row["erro"]
    assert {r.api_key for r in llm.requests_to("/chat/completions")} == {TENANT_KEY}
    assert evolution.sent == []
