"""The owner's daily digest end to end: the day's summaries (real daily jobs) → the digest claim
(the tick's function, at the real time) → real worker → fake LLM → the owner's private chat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from intellizap import jobs
from intellizap.app import Roles
from intellizap.db.engine import Database
from intellizap.summaries.digest import NO_OWNER_NUMBER
from intellizap.summaries.rollup_prompt import QUIET_LABEL
from intellizap.summaries.scheduled import claim_due_digests, claim_due_summaries
from tests.conftest import running_service, wait_until
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.integration.summaries.conftest import summary_settings
from tests.integration.summaries.test_rollups import DIGEST, OWNER, llm, local_zone  # noqa: F401
from tests.integration.summaries.test_summary_limits import add_messages


@pytest.fixture
def settings(database_url: str, evolution: FakeEvolution, llm: FakeOpenAI) -> Any:  # noqa: F811
    return summary_settings(database_url, evolution, llm)


@pytest.fixture
async def service(clean_database: Database, settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(settings, Roles(worker=True)) as client:
        yield client


async def digest_account(database: Database, **values: Any) -> tuple[Any, datetime]:
    """An account with the digest on, whose hour was two minutes ago."""
    zone, local = local_zone()
    values = {"timezone": zone, "owner_digest_enabled": True, **values}
    tenant = await create_tenant(database, "acme-support", **values)
    async with database.session() as session:
        await session.execute(
            text('UPDATE usuarios SET "horaResumo" = :at WHERE id = :id'),
            {"at": (local - timedelta(minutes=2)).strftime("%H:%M"), "id": tenant.id},
        )
    return tenant, local


async def digest_row(database: Database) -> dict[str, Any] | None:
    async with database.session() as session:
        rows = await session.execute(
            text(
                "SELECT id, status::text AS status, conteudo, erro, total_grupos, tokens_usados,"
                " data_envio FROM resumos_dono"
            )
        )
        found = rows.mappings().all()
    assert len(found) <= 1
    return dict(found[0]) if found else None


async def tick_until_digest_done(database: Database, settings: Any) -> dict[str, Any]:
    async def done() -> bool:
        await claim_due_digests(database, settings, datetime.now(UTC), queue=jobs.blueprint)
        row = await digest_row(database)
        return row is not None and row["status"] != "pendente"

    await wait_until(done, within=60)
    row = await digest_row(database)
    assert row is not None
    return row


def to_owner(evolution: FakeEvolution) -> list[Any]:
    return [s for s in evolution.sent if s.number in (OWNER, f"{OWNER}@s.whatsapp.net")]


async def test_digest_is_sent_once_to_the_owner_with_every_group_and_the_quiet_ones(
    service: httpx.AsyncClient,
    clean_database: Database,
    settings: Any,
    evolution: FakeEvolution,
    llm: FakeOpenAI,  # noqa: F811
) -> None:
    tenant, _ = await digest_account(clean_database, owner_number=OWNER)
    for n, (name, messages) in enumerate((("Obra", 8), ("Loja", 8), ("Vizinhos", 2))):
        group = await create_group(
            clean_database, tenant, f"12036340{n:010d}@g.us", summary_enabled=True, name=name
        )
        await add_messages(clean_database, group.id, messages)
    # The service's own worker ticks too: whichever tick claims them, the day has three.
    await claim_due_summaries(clean_database, settings, datetime.now(UTC), queue=jobs.blueprint)
    assert (
        await count(clean_database, "SELECT count(*) FROM resumos WHERE origem = 'agendado'") == 3
    )
    row = await tick_until_digest_done(clean_database, settings)
    assert (row["status"], row["conteudo"], row["total_grupos"]) == ("enviado", DIGEST, 3)
    assert row["data_envio"] is not None
    assert row["tokens_usados"] > 0
    # Every daily summary was finished before the digest was written.
    assert (
        await count(clean_database, "SELECT count(*) FROM resumos WHERE status = 'pendente'") == 0
    )
    [call] = [c for c in llm.completions if "único resumo do dia" in c.messages[0]["content"]]
    user = call.messages[-1]["content"]
    assert "Pendência do grupo Obra" in user
    assert "Pendência do grupo Loja" in user
    assert f"{QUIET_LABEL}\n• Vizinhos" in user
    assert "mensagem número" not in user  # summaries only, never the raw chats
    # Later ticks claim nothing more; the owner got exactly one message.
    assert await claim_due_digests(clean_database, settings, datetime.now(UTC)) == []
    [sent] = to_owner(evolution)
    assert sent.text.startswith("☀️ *Seus grupos hoje*")
    assert DIGEST in sent.text
    async with clean_database.session() as session:
        usage = (
            await session.execute(
                text("SELECT chave, resumo_id FROM uso_tokens WHERE tipo = 'resumo_dono'")
            )
        ).one()
    assert tuple(usage) == ("plataforma", None)


async def account_with_a_sent_summary(database: Database, **values: Any) -> Any:
    tenant, local = await digest_account(database, **values)
    group = await create_group(database, tenant, summary_enabled=True, name="Obra")
    async with database.session() as session:
        await session.execute(
            text(
                "INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia,"
                " conteudo) VALUES (:g, :t, 'enviado', 'agendado', :day, '• Concreto na sexta')"
            ),
            {"g": group.id, "t": tenant.id, "day": local.date()},
        )
    return tenant


async def test_digest_without_numero_dono_is_an_erro_naming_it(
    service: httpx.AsyncClient,
    clean_database: Database,
    settings: Any,
    evolution: FakeEvolution,
    llm: FakeOpenAI,  # noqa: F811
) -> None:
    await account_with_a_sent_summary(clean_database)
    row = await tick_until_digest_done(clean_database, settings)
    assert (row["status"], row["erro"]) == ("erro", NO_OWNER_NUMBER)
    assert "numero_dono" in row["erro"]
    assert llm.completions == []
    assert evolution.sent == []
    assert await count(clean_database, "SELECT count(*) FROM uso_tokens") == 0


async def test_an_account_over_quota_gets_an_erro_not_a_digest(
    service: httpx.AsyncClient,
    clean_database: Database,
    settings: Any,
    evolution: FakeEvolution,
    llm: FakeOpenAI,  # noqa: F811
) -> None:
    tenant = await account_with_a_sent_summary(
        clean_database, owner_number=OWNER, monthly_token_quota=1000
    )
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, chave)"
                " VALUES (:t, 'resumo', 'm', 1000, 'plataforma')"
            ),
            {"t": tenant.id},
        )
    row = await tick_until_digest_done(clean_database, settings)
    assert (row["status"], row["erro"]) == ("erro", "cota mensal de tokens excedida")
    assert llm.completions == []
    assert evolution.sent == []
