"""``POST /api/grupos/{id}/resumos/previa``: a summary with settings being tried, through the real
HTTP app, as a signed-in Supabase user; fake Supabase Auth, Evolution and OpenAI servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.engine import Database
from intellizap.summaries.prompt import PREFS_START
from tests.conftest import make_settings, running_service
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.fakes.supabase import FakeSupabaseAuth

GROUP = "120363401234567890@g.us"
ANA = "5511911112222"
SUMMARY = "📋 *Pendências*\n• @Ana envia o orçamento até sexta."
TENANT_KEY = "sk-tenant-own-key-0123456789abcdef"


@pytest.fixture
def supabase() -> Iterator[FakeSupabaseAuth]:
    with FakeSupabaseAuth.running() as fake:
        yield fake


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = SUMMARY
        yield fake


@pytest.fixture
async def api(
    clean_database: Database,
    database_url: str,
    supabase: FakeSupabaseAuth,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        supabase_url=supabase.url,
        evolution_api_url=evolution.url,
        evolution_api_key="evolution-global-key-123456",
        openai_base_url=llm.url,
        openai_api_key="sk-platform-key-0123456789abcdef",
        job_poll_seconds=0.2,
    )
    async with running_service(settings, Roles(worker=True)) as client:
        yield client


async def account(
    database: Database, *, instance: str = "acme-support", messages: int = 6, **tenant: Any
) -> tuple[uuid.UUID, Any]:
    auth_id = uuid.uuid4()
    owner = await create_tenant(database, instance, auth_id=auth_id, **tenant)
    group = await create_group(
        database, owner, GROUP if instance == "acme-support" else "120363400000000009@g.us"
    )
    now = datetime.now(UTC)
    if not messages:
        return auth_id, group
    async with database.session() as session:
        await session.execute(
            text(
                'INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor",'
                ' "numero-autor", data_mensagem, tipo)'
                " VALUES (:g, :id, :text, 'Ana', :number, :at, 'texto')"
            ),
            [
                {
                    "g": group.id,
                    "id": f"M{i:04d}",
                    "text": f"vou mandar o orçamento até sexta, parte {i}",
                    "number": ANA,
                    "at": now - timedelta(minutes=messages - i),
                }
                for i in range(messages)
            ],
        )
    return auth_id, group


def bearer(supabase: FakeSupabaseAuth, auth_id: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {supabase.token(auth_id)}"}


async def test_a_preview_writes_with_the_tried_settings_and_stores_and_sends_nothing(
    api: httpx.AsyncClient,
    clean_database: Database,
    supabase: FakeSupabaseAuth,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> None:
    auth_id, group = await account(clean_database, mentions_enabled=False)

    response = await api.post(
        f"/api/grupos/{group.id}/resumos/previa",
        json={"idioma": "en-US", "instrucoes_resumo": "Só prazos.", "mencoes_ativas": True},
        headers=bearer(supabase, auth_id),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["conteudo"], body["idioma"], body["resumo_destino"]) == (SUMMARY, "en", "grupo")
    assert body["mencionados"] == [ANA]
    assert (body["total_mensagens"], body["chamadas"]) == (6, 1)
    assert body["tokens_entrada"] > 0
    system = llm.completions[0].messages[0]["content"]
    assert "Escreva em inglês" in system
    assert PREFS_START in system
    assert "Só prazos." in system
    assert "@Nome" in system
    # Nothing stored, nothing sent, nothing saved; the call is metered as a preview.
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 0
    assert await count(clean_database, "SELECT count(*) FROM envios") == 0
    assert evolution.sent == []
    assert await count(clean_database, "SELECT count(*) FROM uso_tokens WHERE tipo = 'previa'") == 1
    assert await count(clean_database, "SELECT count(*) FROM reservas_tokens") == 0
    assert await count(clean_database, "SELECT count(*) FROM grupos WHERE idioma IS NULL") == 1


async def test_without_a_body_the_groups_own_settings_are_used(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth, llm: FakeOpenAI
) -> None:
    auth_id, group = await account(clean_database)

    response = await api.post(
        f"/api/grupos/{group.id}/resumos/previa", json={}, headers=bearer(supabase, auth_id)
    )

    assert response.status_code == 200, response.text
    assert response.json()["idioma"] == "pt-BR"
    assert response.json()["mencionados"] == []
    assert PREFS_START not in llm.completions[0].messages[0]["content"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"idioma": "klingon"}, "idioma: unsupported summary language"),
        ({"instrucoes_resumo": "x" * 501}, "instrucoes_resumo"),
        ({"resumo_destino": "everyone"}, "resumo_destino"),
        ({"mencoes_ativas": "maybe"}, "mencoes_ativas"),
        ({"plano": "infinito"}, "plano"),
    ],
)
async def test_invalid_settings_are_422_naming_the_field_and_call_nothing(
    api: httpx.AsyncClient,
    clean_database: Database,
    supabase: FakeSupabaseAuth,
    llm: FakeOpenAI,
    body: dict[str, Any],
    says: str,
) -> None:
    auth_id, group = await account(clean_database)

    response = await api.post(
        f"/api/grupos/{group.id}/resumos/previa", json=body, headers=bearer(supabase, auth_id)
    )

    assert response.status_code == 422, response.text
    assert says in response.text
    assert llm.completions == []


async def test_another_tenants_group_is_not_found_and_nothing_is_spent(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth, llm: FakeOpenAI
) -> None:
    attacker, _ = await account(clean_database)
    _, victims_group = await account(clean_database, instance="victim")

    response = await api.post(
        f"/api/grupos/{victims_group.id}/resumos/previa",
        json={},
        headers=bearer(supabase, attacker),
    )

    assert response.status_code == 404
    assert llm.completions == []
    assert (
        await api.post(f"/api/grupos/{victims_group.id}/resumos/previa", json={})
    ).status_code == 401


async def test_a_preview_counts_against_the_quota_and_is_refused_beyond_it(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth, llm: FakeOpenAI
) -> None:
    auth_id, group = await account(clean_database, monthly_token_quota=50)

    response = await api.post(
        f"/api/grupos/{group.id}/resumos/previa", json={}, headers=bearer(supabase, auth_id)
    )

    assert response.status_code == 402, response.text
    assert "quota" in response.json()["detail"]
    assert llm.completions == []


async def test_a_refused_own_key_is_the_customers_to_fix(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth, llm: FakeOpenAI
) -> None:
    llm.invalid_keys = {TENANT_KEY}
    auth_id, group = await account(clean_database, openai_key=TENANT_KEY)

    response = await api.post(
        f"/api/grupos/{group.id}/resumos/previa", json={}, headers=bearer(supabase, auth_id)
    )

    assert response.status_code == 422
    assert "own OpenAI key" in response.json()["detail"]
    assert TENANT_KEY not in response.text


async def test_a_throttled_provider_is_503_with_when_to_retry(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth, llm: FakeOpenAI
) -> None:
    llm.fail_next("/chat/completions", 429, times=10, retry_after=120)
    auth_id, group = await account(clean_database)

    response = await api.post(
        f"/api/grupos/{group.id}/resumos/previa", json={}, headers=bearer(supabase, auth_id)
    )

    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1


async def test_too_few_messages_is_a_conflict_and_calls_nothing(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth, llm: FakeOpenAI
) -> None:
    auth_id, group = await account(clean_database, messages=0)

    response = await api.post(
        f"/api/grupos/{group.id}/resumos/previa", json={}, headers=bearer(supabase, auth_id)
    )

    assert response.status_code == 409
    assert "0 messages" in response.json()["detail"]
    assert llm.completions == []
