"""Summaries under pressure: a throttling provider, many summaries of one tenant at once, a
quota nearly spent, concurrent /resumo requests. Real worker, real PostgreSQL, fake LLM and
Evolution over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from intellizap import jobs
from intellizap.app import Roles
from intellizap.db.engine import Database
from intellizap.summaries.on_demand import request_on_demand
from intellizap.summaries.preview import group_row
from intellizap.summaries.scheduled import SUMMARIZE_TASK, claim_due_summaries, summary_job
from intellizap.summaries.service import draft
from intellizap.summaries.tasks import summarize_group
from intellizap.summaries.tokens import load_encoding
from tests.conftest import make_settings, running_service, wait_until
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI

PLATFORM_KEY = "sk-platform-key-0123456789abcdef"
assert summarize_group.name == SUMMARIZE_TASK  # registered on jobs.blueprint (defer_in_transaction)
ZONE = "America/Sao_Paulo"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = "📌 *Principais assuntos*\n• Tudo certo."
        yield fake


def settings_for(
    database_url: str, evolution: FakeEvolution, llm: FakeOpenAI, **overrides: Any
) -> Any:
    values: dict[str, Any] = {
        "evolution_api_url": evolution.url,
        "evolution_api_key": "evolution-global-key-123456",
        "openai_base_url": llm.url,
        "openai_api_key": PLATFORM_KEY,
        "send_min_interval_seconds": 0,
        "job_poll_seconds": 0.2,
        "worker_concurrency": 32,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


def local_hour_now() -> str:
    return datetime.now(ZoneInfo(ZONE)).strftime("%H:%M")


async def add_messages(database: Database, group_id: uuid.UUID, n: int) -> None:
    now = datetime.now(UTC)
    async with database.session() as session:
        await session.execute(
            text(
                'INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor",'
                ' "numero-autor", data_mensagem, tipo)'
                " VALUES (:g, :id, :text, :name, '5511999990000', :at, 'texto')"
            ),
            [
                {
                    "g": group_id,
                    "id": f"{group_id.hex[:8]}-{i:05d}",
                    "text": f"mensagem número {i} sobre o pedido {i % 7}",
                    "name": f"Pessoa {i % 3}",
                    "at": now - timedelta(seconds=5 * (n - i)),
                }
                for i in range(n)
            ],
        )


async def tenant_with_groups(
    database: Database, instance: str, groups: int, *, messages: int = 8, **tenant: Any
) -> tuple[Any, list[Any]]:
    owner = await create_tenant(database, instance, timezone=ZONE, **tenant)
    async with database.session() as session:
        await session.execute(
            text('UPDATE usuarios SET "horaResumo" = :at WHERE id = :id'),
            {"at": local_hour_now(), "id": owner.id},
        )
    made = []
    for n in range(groups):
        jid = f"1203634{abs(hash((instance, n))) % 10**11:011d}@g.us"
        group = await create_group(database, owner, jid, summary_enabled=True, name=f"G{n}")
        await add_messages(database, group.id, messages)
        made.append(group)
    return owner, made


async def claim_and_queue_now(database: Database, settings: Any) -> int:
    """What the tick does (claims and their jobs in one transaction), at this very minute. The
    jobs go in through the claim's connection: the queue app needs no pool of its own."""
    claims = await claim_due_summaries(database, settings, datetime.now(UTC), queue=jobs.blueprint)
    return len(claims)


async def statuses(database: Database) -> Counter[str]:
    async with database.session() as session:
        rows = await session.execute(text("SELECT status::text FROM resumos"))
        return Counter(row[0] for row in rows)


async def reasons(database: Database) -> list[str]:
    async with database.session() as session:
        rows = await session.execute(text("SELECT erro FROM resumos WHERE status = 'erro'"))
        return [row[0] for row in rows]


async def all_finished(database: Database) -> bool:
    found = await statuses(database)
    return bool(found) and found["pendente"] == 0


@pytest.fixture
async def service(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(
        settings_for(database_url, evolution, llm), Roles(worker=True)
    ) as client:
        yield client


# -- a throttling provider ------------------------------------------------------------------------


async def test_a_throttled_provider_makes_summaries_later_and_loses_none(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    """Before: with the provider at a few requests per second, summaries that kept meeting 429
    ended ``erro`` after 6 attempts (coming back in lockstep) and were never sent."""
    llm.throttle(requests_per_second=3, burst=3)
    groups = []
    for n in range(30):
        _, made = await tenant_with_groups(clean_database, f"busy-{n:02d}", 1)
        groups.extend(made)
    settings = settings_for(database_url, evolution, llm)
    assert await claim_and_queue_now(clean_database, settings) == 30
    async with running_service(settings, Roles(worker=True)):
        await wait_until(lambda: all_finished(clean_database), within=180)

    assert await statuses(clean_database) == Counter({"enviado": 30})
    per_group = Counter(sent.number for sent in evolution.sent)
    assert per_group == Counter({group.jid: 1 for group in groups})
    admitted, refused = llm.throttled
    assert admitted == 30
    # Paced by the provider's headers (a few at a bucket's edge), not found by hitting its limit:
    # without the limiter, 27 of the first 30 calls alone are refused.
    assert refused <= 10


async def test_a_summary_given_up_under_a_rate_limit_says_it_was_a_rate_limit(
    service: httpx.AsyncClient, clean_database: Database, llm: FakeOpenAI
) -> None:
    """Before: "o provedor de IA recusou o pedido", as if the request itself were wrong."""
    llm.throttle(requests_per_second=0.01, burst=1)
    async with httpx.AsyncClient() as client:  # someone else spent the key's only request
        await client.post(
            f"{llm.url}/chat/completions",
            headers={"Authorization": f"Bearer {PLATFORM_KEY}"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        )
    owner, [group] = await tenant_with_groups(clean_database, "late", 1)
    summary_id = uuid.uuid4()
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO resumos (id, grupo_id, usuario_id, status, origem)"
                " VALUES (:id, :g, :t, 'pendente', 'sob_demanda')"
            ),
            {"id": summary_id, "g": group.id, "t": owner.id},
        )
        await jobs.defer_in_transaction(
            session,
            jobs.blueprint,
            SUMMARIZE_TASK,
            [summary_job(summary_id, group.id, datetime.now(UTC) + timedelta(seconds=20))],
        )
    await wait_until(lambda: all_finished(clean_database), within=60)

    [reason] = await reasons(clean_database)
    assert "limite de taxa" in reason
    assert "prazo" in reason
    assert "recusou" not in reason


async def test_a_refused_platform_key_is_reported_as_the_services_problem(
    service: httpx.AsyncClient, clean_database: Database, database_url: str, llm: FakeOpenAI
) -> None:
    llm.invalid_keys = {PLATFORM_KEY}
    await tenant_with_groups(clean_database, "platform-refused", 1)
    # Claimed by this call or by the running worker's own tick, whichever comes first.
    await claim_and_queue_now(clean_database, make_settings(database_url))
    await wait_until(lambda: all_finished(clean_database), within=30)

    [reason] = await reasons(clean_database)
    assert "plataforma" in reason
    assert "não da sua conta" in reason
    assert "cliente" not in reason


# -- the quota ------------------------------------------------------------------------------------


async def platform_tokens(database: Database) -> int:
    return await count(
        database,
        "SELECT COALESCE(sum(tokens_entrada + tokens_saida), 0) FROM uso_tokens"
        " WHERE chave = 'plataforma'",
    )


async def worst_case_tokens(database: Database, settings: Any, group: Any) -> int:
    row = await group_row(database, group.id)
    assert row is not None
    plan = await draft(database, settings, row, now=datetime.now(UTC))
    return plan.most_tokens


async def test_summaries_of_one_tenant_running_at_once_never_spend_more_than_its_quota(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    """Before: the check reserved nothing, so every group claimed in one tick passed it at once
    and the tenant spent several times what was left."""
    llm.latency = 1.0  # all five calls are in flight together
    llm.completion = "x" * 400  # a full answer: 100 tokens, the maximum below
    settings = settings_for(database_url, evolution, llm, summary_max_output_tokens=100)
    owner, groups = await tenant_with_groups(clean_database, "frugal", 5)
    limit = int(2.5 * await worst_case_tokens(clean_database, settings, groups[0]))
    async with clean_database.session() as session:
        await session.execute(
            text("UPDATE usuarios SET tokens_mes = :limit WHERE id = :id"),
            {"limit": limit, "id": owner.id},
        )
    assert await claim_and_queue_now(clean_database, settings) == 5
    async with running_service(settings, Roles(worker=True)):
        await wait_until(lambda: all_finished(clean_database), within=90)

    assert await platform_tokens(clean_database) <= limit
    found = await statuses(clean_database)
    assert found["enviado"] >= 1
    assert found["erro"] >= 1
    assert all("cota mensal de tokens" in reason for reason in await reasons(clean_database))
    assert len(llm.completions) == found["enviado"]
    assert await count(clean_database, "SELECT count(*) FROM reservas_tokens") == 0


async def test_a_long_day_is_not_map_reduced_on_what_little_quota_is_left(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    """Before: one check that "some" quota was left, then a dozen partial calls and a merge."""
    settings = settings_for(database_url, evolution, llm, summary_input_token_budget=2_000)
    owner, [group] = await tenant_with_groups(clean_database, "long-day", 1, messages=1_500)
    needed = await worst_case_tokens(clean_database, settings, group)
    async with clean_database.session() as session:
        await session.execute(
            text("UPDATE usuarios SET tokens_mes = :limit WHERE id = :id"),
            {"limit": 1_000_000, "id": owner.id},
        )
        await session.execute(
            text(
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, tokens_saida,"
                " chave) VALUES (:t, 'resumo', 'm', :used, 0, 'plataforma')"
            ),
            {"t": owner.id, "used": 1_000_000 - needed // 3},
        )
    assert await claim_and_queue_now(clean_database, settings) == 1
    async with running_service(settings, Roles(worker=True)):
        await wait_until(lambda: all_finished(clean_database), within=60)

    [reason] = await reasons(clean_database)
    assert reason.startswith("cota mensal de tokens insuficiente")
    assert llm.completions == []
    assert evolution.sent == []


# -- /resumo --------------------------------------------------------------------------------------


async def test_ten_concurrent_resumo_requests_for_a_group_queue_exactly_one_summary(
    clean_database: Database, database_url: str
) -> None:
    """Before: the lock was taken in the statement whose snapshot predated it; 8 of 10 won."""
    owner, [group] = await tenant_with_groups(clean_database, "racy", 1)
    settings = make_settings(database_url)
    racers = Database(database_url, pool_size=10)
    try:
        results = await asyncio.gather(
            *(
                request_on_demand(
                    racers, jobs.blueprint, settings, tenant_id=owner.id, group_id=group.id
                )
                for _ in range(10)
            )
        )
    finally:
        await racers.dispose()

    assert len([r for r in results if r is not None]) == 1
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 1
    assert (
        await count(
            clean_database,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'summarize'",
        )
        == 1
    )


async def test_a_worker_loads_the_token_encoding_at_start_not_on_its_first_summary(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    """Before: the first summary of a fresh worker loaded it, stalling the event loop (and every
    job on it) for about two seconds."""
    load_encoding.cache_clear()

    async def loaded() -> bool:
        return load_encoding.cache_info().currsize == 1

    async with running_service(settings_for(database_url, evolution, llm), Roles(worker=True)):
        await wait_until(loaded, within=30)
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 0  # no summary ran
