"""The frontend API's test set-up, for this directory: the all-in-one service with fake
Supabase Auth, Evolution and OpenAI servers, and a signed-in user's account with a group."""

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
from tests.conftest import make_settings, running_service
from tests.factories import create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.fakes.supabase import FakeSupabaseAuth

JWT_SECRET = "legacy-supabase-jwt-secret-with-at-least-32-chars"
GROUP = "120363401234567890@g.us"
SUMMARY = "📌 *Principais assuntos*\n• O orçamento foi aprovado."


@pytest.fixture
def supabase() -> Iterator[FakeSupabaseAuth]:
    with FakeSupabaseAuth.running() as fake:
        yield fake


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = SUMMARY
        yield fake


def api_settings(database_url: str, **overrides: Any) -> Any:
    return make_settings(database_url, supabase_jwt_secret=JWT_SECRET, **overrides)


@pytest.fixture
async def api(
    clean_database: Database,
    database_url: str,
    supabase: FakeSupabaseAuth,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> AsyncIterator[httpx.AsyncClient]:
    """The all-in-one service, accepting both Supabase token kinds (legacy secret and JWKS)."""
    settings = api_settings(
        database_url,
        supabase_url=supabase.url,
        evolution_api_url=evolution.url,
        evolution_api_key="evolution-global-key-123456",
        openai_base_url=llm.url,
        openai_api_key="sk-platform-key-0123456789abcdef",
        send_min_interval_seconds=0,
        job_poll_seconds=0.2,
    )
    async with running_service(settings, Roles(worker=True)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def account_with_group(
    database: Database,
    *,
    instance: str = "acme-support",
    jid: str = GROUP,
    messages: int = 8,
    active: bool = True,
    **tenant_values: Any,
) -> tuple[uuid.UUID, Any, Any]:
    """A tenant owned by a fresh Supabase user, with one group holding ``messages`` messages."""
    auth_id = tenant_values.pop("auth_id", None) or uuid.uuid4()
    tenant = await create_tenant(database, instance, auth_id=auth_id, **tenant_values)
    group = await create_group(database, tenant, jid, active=active, name="Equipe Vendas")
    now = datetime.now(UTC)
    async with database.session() as session:
        for i in range(messages):
            await session.execute(
                text(
                    'INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor",'
                    " data_mensagem, tipo) VALUES (:g, :id, :text, 'Ana', :at, 'texto')"
                ),
                {
                    "g": group.id,
                    "id": f"M{i:04d}",
                    "text": f"mensagem {i}",
                    "at": now - timedelta(minutes=messages - i),
                },
            )
    return auth_id, tenant, group


async def summary_status(client: httpx.AsyncClient, token: str, location: str) -> str:
    response = await client.get(location, headers=bearer(token))
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status
