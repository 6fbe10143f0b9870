"""The tick's claims and re-queues at the size of a 09:00 burst, against real PostgreSQL: every
one that queues at least ``BULK_DEFER`` jobs analyzes the job table afterwards (2026-11-25 is a
Wednesday; 20:00 in São Paulo is 23:00 UTC)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.summaries.scheduled import (
    claim_due_digests,
    claim_due_recaps,
    claim_due_summaries,
    requeue_orphaned_summaries,
)
from intellizap.task_modules import connect_queue
from tests.conftest import make_settings
from tests.factories import count
from tests.integration.summaries.test_rollup_schedule import WEDNESDAY, account
from tests.integration.summaries.test_summary_schedule import utc

BULK = jobs.BULK_DEFER

GROUPS = """
INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa,
                    resumo_semanal_dia)
SELECT '12036340' || lpad(n::text, 10, '0') || '@g.us', :tenant, true, true, false, :weekday
FROM generate_series(1, :n) AS n
"""
OWNERS = """
INSERT INTO usuarios (instancia, "horaResumo", fuso_horario, resumo_diario_dono)
SELECT 'owner-' || n, '20:00', 'America/Sao_Paulo', true FROM generate_series(1, :n) AS n
"""
# Claimed by a version that queued after committing, and never queued: orphans to re-queue.
ORPHANS = """
INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia, created_at)
SELECT id, usuario_id, 'pendente', 'agendado', current_date, now() - interval '5 minutes'
FROM grupos
"""


@pytest.fixture
def settings(database_url: str) -> Any:
    return make_settings(database_url)


async def analyses_of_the_job_table(database: Database) -> int:
    """How many times ``ANALYZE`` ran on the job table (by hand: autovacuum's are apart)."""
    return await count(
        database,
        "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'",
    )


async def groups_due(database: Database, n: int, weekday: int | None = None) -> None:
    tenant = await account(database, "bulk")  # 20:00 in São Paulo
    async with database.session() as session:
        await session.execute(text(GROUPS), {"tenant": tenant.id, "weekday": weekday, "n": n})


Tick = Callable[[Database, Any, str], Awaitable[int]]


async def daily(database: Database, settings: Any, url: str) -> int:
    await groups_due(database, BULK)
    now = utc(2026, 11, 25, 23, 0)
    return len(await claim_due_summaries(database, settings, now, queue=connect_queue(url)))


async def recaps(database: Database, settings: Any, url: str) -> int:
    await groups_due(database, BULK, WEDNESDAY)
    now = utc(2026, 11, 25, 23, 0)
    return len(await claim_due_recaps(database, settings, now, queue=connect_queue(url)))


async def digests(database: Database, settings: Any, url: str) -> int:
    async with database.session() as session:
        await session.execute(text(OWNERS), {"n": BULK})
    now = utc(2026, 11, 25, 23, 30)  # 30 minutes after their hour: due without any summary
    return len(await claim_due_digests(database, settings, now, queue=connect_queue(url)))


async def orphans(database: Database, settings: Any, url: str) -> int:
    await groups_due(database, BULK)
    async with database.session() as session:
        await session.execute(text(ORPHANS))
    async with connect_queue(url).open_async() as queue:
        return await requeue_orphaned_summaries(database, queue, settings)


@pytest.mark.parametrize("tick", [daily, recaps, digests, orphans])
async def test_each_bulk_defer_of_the_tick_analyzes_the_job_table(
    clean_database: Database, settings: Any, database_url: str, tick: Tick
) -> None:
    """Before, only the daily claim did: after a burst of recaps, digests or re-queued orphans,
    workers fetched through plans made while the queue was small (one job a second)."""
    before = await analyses_of_the_job_table(clean_database)
    assert await tick(clean_database, settings, database_url) == BULK
    assert await count(clean_database, "SELECT count(*) FROM procrastinate_jobs") == BULK
    assert await analyses_of_the_job_table(clean_database) == before + 1


async def test_a_small_defer_leaves_the_job_table_to_autovacuum(
    clean_database: Database, settings: Any, database_url: str
) -> None:
    await groups_due(clean_database, BULK - 1, WEDNESDAY)
    before = await analyses_of_the_job_table(clean_database)
    now = utc(2026, 11, 25, 23, 0)
    claims = await claim_due_recaps(
        clean_database, settings, now, queue=connect_queue(database_url)
    )
    assert len(claims) == BULK - 1
    assert await analyses_of_the_job_table(clean_database) == before
