"""The end-to-end summary tests' set-up, for this directory: the all-in-one service with a worker,
against the fake Evolution and a fake LLM answering ``SUMMARY``; a tenant's group with messages;
``/resumo`` command bodies and POSTing them; and reading the ``resumos`` rows back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.engine import Database
from tests.conftest import load_fixture, make_settings, running_service, webhook_headers
from tests.factories import create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

GROUP = "120363401234567890@g.us"
PLATFORM_KEY = "sk-platform-key-0123456789abcdef"
TENANT_KEY = "sk-tenant-own-key-0123456789abcdef"
SUMMARY = "📌 *Principais assuntos*\n• A reunião foi remarcada para quinta."


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = SUMMARY
        yield fake


def summary_settings(
    database_url: str, evolution: FakeEvolution, llm: FakeOpenAI, **overrides: Any
) -> Any:
    values: dict[str, Any] = {
        "evolution_api_url": evolution.url,
        "evolution_api_key": "evolution-global-key-123456",
        "openai_base_url": llm.url,
        "openai_api_key": PLATFORM_KEY,
        "send_min_interval_seconds": 0,
        "send_outcome_wait_seconds": 1,
        "job_poll_seconds": 0.2,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
async def service(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(
        summary_settings(database_url, evolution, llm), Roles(worker=True)
    ) as client:
        yield client


async def group_with_messages(database: Database, n: int = 8, **tenant_values: Any) -> Any:
    tenant = await create_tenant(database, "acme-support", **tenant_values)
    group = await create_group(database, tenant, GROUP, summary_enabled=True, name="Equipe Vendas")
    now = datetime.now(UTC)
    async with database.session() as session:
        await session.execute(
            text(
                'INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor", "numero-autor",'
                " data_mensagem, tipo) VALUES (:g, :id, :text, :name, '5511999990000', :at, 'texto')"
            ),
            [
                {
                    "g": group.id,
                    "id": f"M{i:05d}",
                    "text": f"mensagem número {i}",
                    "name": f"Pessoa {i % 3}",
                    "at": now - timedelta(seconds=10 * (n - i)),
                }
                for i in range(n)
            ],
        )
    return tenant, group


def resumo_command(*, from_me: bool = True, message_id: str = "CMD1") -> dict[str, Any]:
    body = load_fixture("messages.upsert.text.group.json")
    body["data"]["key"].update(id=message_id, fromMe=from_me)
    body["data"]["message"] = {"conversation": "/resumo"}
    return body


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post(
        "/webhooks/evolution", json=body, headers=webhook_headers(body["instance"])
    )
    assert response.status_code == 200, response.text


async def summaries(database: Database) -> list[dict[str, Any]]:
    async with database.session() as session:
        rows = await session.execute(
            text(
                "SELECT id, status::text AS status, conteudo, total_mensagens, tokens_usados, erro,"
                " origem, data_envio FROM resumos"
            )
        )
        return [dict(row) for row in rows.mappings()]


async def finished(database: Database) -> bool:
    rows = await summaries(database)
    return bool(rows) and all(row["status"] != "pendente" for row in rows)
