"""Weekly recaps and owners' digests end to end: claim (the tick's functions, at the real time)
→ real worker → fake LLM → send ledger → fake Evolution → the row's final status."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import procrastinate
import pytest
from sqlalchemy import text

from intellizap import jobs
from intellizap.app import Roles
from intellizap.db.engine import Database
from intellizap.summaries.scheduled import claim_due_recaps
from tests.conftest import running_service, wait_until
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.integration.summaries.conftest import summary_settings

OWNER = "5511988887777"
RECAP = "🗓️ retrospectiva: a obra avançou"
DIGEST = "🔴 Para você: [Obra] confirmar a entrega"


def local_zone() -> tuple[str, datetime]:
    """A zone where it is not near midnight now, so "today" stays today during the test."""
    for zone in ("America/Sao_Paulo", "Asia/Tokyo", "Europe/London"):
        local = datetime.now(ZoneInfo(zone))
        if 1 <= local.hour <= 21:
            return zone, local
    raise AssertionError("unreachable: those zones are hours apart")


def answer(messages: list[dict[str, Any]]) -> str:
    system, user = messages[0]["content"], messages[-1]["content"]
    if "retrospectiva semanal" in system:
        return RECAP
    if "único resumo do dia" in system:
        return DIGEST
    group = re.search(r"Grupo: (.*)", user)
    return f"• Pendência do grupo {group.group(1) if group else '?'}"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = answer
        yield fake


@pytest.fixture
async def service(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(
        summary_settings(database_url, evolution, llm), Roles(worker=True)
    ) as client:
        yield client


@pytest.fixture
def settings(database_url: str, evolution: FakeEvolution, llm: FakeOpenAI) -> Any:
    return summary_settings(database_url, evolution, llm)


async def weekly_group(database: Database, **values: Any) -> tuple[Any, Any, date]:
    """A group whose recap is due now (its own hour, two minutes ago); the account's daily hour
    is hours away, so no daily summary is claimed meanwhile."""
    zone, local = local_zone()
    tenant_values = {"timezone": zone, "owner_number": OWNER, **values.pop("tenant", {})}
    tenant = await create_tenant(database, "acme-support", **tenant_values)
    async with database.session() as session:
        await session.execute(
            text('UPDATE usuarios SET "horaResumo" = :at WHERE id = :id'),
            {"at": (local + timedelta(hours=8)).strftime("%H:%M"), "id": tenant.id},
        )
    group = await create_group(
        database,
        tenant,
        "120363401234567890@g.us",
        summary_enabled=True,
        name="Obra Centro",
        weekly_recap_day=local.isoweekday(),
        weekly_recap_time=(local - timedelta(minutes=2)).time().replace(second=0, microsecond=0),
        **values,
    )
    return tenant, group, local.date()


async def add_summary(
    database: Database, group: Any, day: date, content: str, **values: Any
) -> uuid.UUID:
    row = {"status": "enviado", "origem": "agendado", "data_referencia": day, **values}
    async with database.session() as session:
        summary_id: uuid.UUID = (
            await session.execute(
                text(
                    "INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia,"
                    " conteudo, total_mensagens, periodo_fim) VALUES (:g, :t,"
                    " CAST(:status AS status_resumo), :origem, :data_referencia, :c, 10, now())"
                    " RETURNING id"
                ),
                {"g": group.id, "t": group.tenant_id, "c": content, **row},
            )
        ).scalar_one()
    return summary_id


async def add_raw_messages(database: Database, group: Any) -> None:
    async with database.session() as session:
        await session.execute(
            text(
                "INSERT INTO mensagens (grupo_id, id_externo, mensagem, data_mensagem, tipo)"
                " VALUES (:g, :id, 'MENSAGEM CRUA do chat', now(), 'texto')"
            ),
            [{"g": group.id, "id": f"RAW{i}"} for i in range(8)],
        )


async def recap_row(database: Database) -> dict[str, Any]:
    async with database.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT id, status::text AS status, conteudo, erro, tokens_usados,"
                    " periodo_inicio, periodo_fim, data_envio FROM resumos"
                    " WHERE origem = 'semanal' ORDER BY data_referencia DESC LIMIT 1"
                )
            )
        ).mappings()
        return dict(row.one())


async def recap_done(database: Database) -> bool:
    return (await recap_row(database))["status"] != "pendente"


async def claim_recaps_now(database: Database, settings: Any) -> None:
    await claim_due_recaps(database, settings, datetime.now(UTC), queue=jobs.blueprint)


async def test_weekly_recap_reduces_the_weeks_dailies_and_is_sent_to_the_group_once(
    service: httpx.AsyncClient,
    clean_database: Database,
    settings: Any,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> None:
    _, group, today = await weekly_group(clean_database)
    for back in range(7):  # the 7 local days up to the recap's
        await add_summary(clean_database, group, today - timedelta(days=back), f"DIA-{back}")
    await add_summary(clean_database, group, today - timedelta(days=7), "SEMANA-PASSADA")
    failed = {"status": "erro", "origem": "sob_demanda", "data_referencia": None}
    await add_summary(clean_database, group, today, "FALHOU", **failed)
    asked = {"origem": "sob_demanda", "data_referencia": None}  # its day: when its period ended
    await add_summary(clean_database, group, today, "SOB-DEMANDA", **asked)
    await add_summary(
        clean_database, group, today - timedelta(days=7), "RECAP-ANTIGO", origem="semanal"
    )
    await add_raw_messages(clean_database, group)
    await claim_recaps_now(clean_database, settings)
    await claim_recaps_now(clean_database, settings)  # a second tick claims nothing more
    await wait_until(lambda: recap_done(clean_database), within=30)
    row = await recap_row(clean_database)
    assert (row["status"], row["conteudo"]) == ("enviado", RECAP)
    assert row["tokens_usados"] > 0
    assert row["data_envio"] is not None
    [call] = llm.completions
    user = call.messages[-1]["content"]
    for back in range(7):
        assert f"DIA-{back}" in user
    assert "SOB-DEMANDA" in user
    assert user.index("DIA-6") < user.index("DIA-0")  # chronological
    for absent in ("SEMANA-PASSADA", "FALHOU", "RECAP-ANTIGO", "MENSAGEM CRUA"):
        assert absent not in user
    [sent] = evolution.sent
    assert sent.number == group.jid
    assert sent.text.startswith("🗓️ *Resumo da semana*")
    assert RECAP in sent.text
    async with clean_database.session() as session:
        usage = (await session.execute(text("SELECT tipo, resumo_id FROM uso_tokens"))).one()
    assert tuple(usage) == ("resumo", row["id"])


async def test_weekly_recap_goes_to_the_owner_when_the_group_says_dono(
    service: httpx.AsyncClient,
    clean_database: Database,
    settings: Any,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> None:
    _, group, today = await weekly_group(clean_database, summary_destination="dono")
    await add_summary(clean_database, group, today - timedelta(days=2), "DIA-2")
    await claim_recaps_now(clean_database, settings)
    await wait_until(lambda: recap_done(clean_database), within=30)
    assert (await recap_row(clean_database))["status"] == "enviado"
    [sent] = evolution.sent
    assert sent.number in (OWNER, f"{OWNER}@s.whatsapp.net")
    assert sent.text.startswith("🗓️ *Resumo da semana* — Obra Centro")


async def test_weekly_recap_without_dailies_ends_in_erro_and_sends_nothing(
    service: httpx.AsyncClient,
    clean_database: Database,
    settings: Any,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> None:
    _, group, today = await weekly_group(clean_database)
    await add_summary(clean_database, group, today - timedelta(days=9), "VELHO")
    await add_raw_messages(clean_database, group)
    await claim_recaps_now(clean_database, settings)
    await wait_until(lambda: recap_done(clean_database), within=30)
    row = await recap_row(clean_database)
    assert row["status"] == "erro"
    assert "nenhum resumo diário enviado na semana" in row["erro"]
    assert llm.completions == []
    assert evolution.sent == []
    assert await count(clean_database, "SELECT count(*) FROM uso_tokens") == 0


async def queue_empty(database: Database) -> bool:
    return not await count(
        database,
        "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        " AND task_name <> 'summary_tick'",
    )


async def test_a_recap_written_before_a_crash_is_sent_without_calling_the_llm_again(
    service: httpx.AsyncClient,
    clean_database: Database,
    database_url: str,
    settings: Any,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> None:
    _tenant, group, today = await weekly_group(clean_database)
    await add_summary(clean_database, group, today, "DIA-0")
    # The claim, then the job wrote the recap and died before its send was queued.
    [claim] = await claim_due_recaps(clean_database, settings, datetime.now(UTC))
    async with clean_database.session() as session:
        await session.execute(
            text("UPDATE resumos SET conteudo = 'JÁ ESCRITO' WHERE id = :id"),
            {"id": claim.summary_id},
        )
    # The job runs again, twice at once even (as another process would queue it): one send.
    other_process = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=database_url)
    )
    async with other_process.open_async():
        for _ in range(2):
            await other_process.configure_task("weekly_recap", queue="summaries").defer_async(
                summary_id=str(claim.summary_id)
            )
    await wait_until(lambda: recap_done(clean_database), within=30)
    await wait_until(lambda: queue_empty(clean_database), within=30)
    assert llm.completions == []
    [sent] = evolution.sent
    assert "JÁ ESCRITO" in sent.text


async def test_an_account_over_quota_gets_an_erro_not_a_recap(
    service: httpx.AsyncClient,
    clean_database: Database,
    settings: Any,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> None:
    tenant, group, today = await weekly_group(clean_database, tenant={"monthly_token_quota": 1000})
    await add_summary(clean_database, group, today, "DIA-0")
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, chave)"
                " VALUES (:t, 'resumo', 'm', 1000, 'plataforma')"
            ),
            {"t": tenant.id},
        )
    await claim_recaps_now(clean_database, settings)
    await wait_until(lambda: recap_done(clean_database), within=30)
    row = await recap_row(clean_database)
    assert (row["status"], row["erro"]) == ("erro", "cota mensal de tokens excedida")
    assert llm.completions == []
    assert evolution.sent == []
