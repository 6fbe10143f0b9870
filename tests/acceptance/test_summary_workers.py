"""Two workers at once, real processes: each scheduled summary is written and sent once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from intellizap.db.engine import Database
from tests.acceptance.test_jobs_durability import start_worker
from tests.conftest import wait_until
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = "📌 *Principais assuntos*\n• Tudo certo."
        yield fake


async def test_two_workers_send_each_scheduled_summary_once(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    # Due now: the workers' next minute tick claims it.
    due = datetime.now(UTC).astimezone(ZoneInfo("America/Sao_Paulo")).strftime("%H:%M")
    groups = []
    for n in range(3):
        tenant = await create_tenant(clean_database, f"tenant-{n}")
        async with clean_database.session() as session:
            await session.execute(
                text('UPDATE usuarios SET "horaResumo" = :at WHERE id = :id'),
                {"at": due, "id": tenant.id},
            )
        group = await create_group(
            clean_database, tenant, f"12036340000000000{n}@g.us", summary_enabled=True
        )
        groups.append(group)
        async with clean_database.session() as session:
            for i in range(6):
                await session.execute(
                    text(
                        "INSERT INTO mensagens (grupo_id, id_externo, mensagem, data_mensagem, tipo)"
                        " VALUES (:g, :id, :t, now() - make_interval(mins => :m), 'texto')"
                    ),
                    {"g": group.id, "id": f"M{i}", "t": f"mensagem {i}", "m": 10 - i},
                )
    workers = [start_worker(database_url, evolution, llm) for _ in range(2)]
    try:

        async def all_sent() -> bool:
            return (
                await count(clean_database, "SELECT count(*) FROM resumos WHERE status = 'enviado'")
                == 3
            )

        await wait_until(all_sent, within=120)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 3
    assert len(llm.completions) == 3
    assert sorted(sent.instance for sent in evolution.sent) == ["tenant-0", "tenant-1", "tenant-2"]
