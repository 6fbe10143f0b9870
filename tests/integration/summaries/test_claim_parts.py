"""A tick with many tenants due claims them in parts at once, each part its own transaction:
every summary claimed once and queued once, whatever runs beside it or fails in another part
(2026-11-25 20:00 in São Paulo is 23:00 UTC)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from intellizap.db.engine import Database
from intellizap.summaries.scheduled import CLAIM_PART_TENANTS, claim_due_summaries, claim_parts
from intellizap.task_modules import connect_queue
from tests.conftest import make_settings
from tests.factories import count
from tests.integration.summaries.test_summary_schedule import utc

TENANTS = 2 * CLAIM_PART_TENANTS + 500  # three parts
AT_20H = utc(2026, 11, 25, 23, 0)

DUE_TENANTS = """
WITH t AS (
    INSERT INTO usuarios (instancia, "horaResumo", fuso_horario)
    SELECT 'parts-' || n, '20:00', 'America/Sao_Paulo' FROM generate_series(1, :n) AS n
    RETURNING id
)
INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa)
SELECT 'parts-' || t.id || '@g.us', t.id, true, true, false FROM t
"""
# Each summary and its job, by the transaction that wrote them.
SUMMARIES_AND_JOBS = """
SELECT count(*) AS summaries, count(DISTINCT r.xmin::text) AS transactions,
       count(j.id) AS jobs, count(*) FILTER (WHERE j.xmin::text = r.xmin::text) AS together
FROM resumos r
LEFT JOIN procrastinate_jobs j ON j.queueing_lock = 'summary:' || r.id
"""
# A database error inside one part's statement: a trigger refusing one group's summary.
REFUSE_ONE_GROUP = (
    """
CREATE FUNCTION test_refuse_one_summary() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.grupo_id = '{group}' THEN
        RAISE EXCEPTION 'could not extend file: No space left on device';
    END IF;
    RETURN NEW;
END $$
""",
    "CREATE TRIGGER test_refuse_one_summary BEFORE INSERT ON resumos"
    " FOR EACH ROW EXECUTE FUNCTION test_refuse_one_summary()",
)
STOP_REFUSING = (
    "DROP TRIGGER IF EXISTS test_refuse_one_summary ON resumos",
    "DROP FUNCTION IF EXISTS test_refuse_one_summary()",
)


@pytest.fixture
def settings(database_url: str) -> Any:
    return make_settings(database_url)


@pytest.fixture
async def many_due(clean_database: Database) -> Database:
    async with clean_database.session() as session:
        await session.execute(text(DUE_TENANTS), {"n": TENANTS})
    return clean_database


async def summaries_and_jobs(database: Database) -> dict[str, int]:
    async with database.session() as session:
        row = (await session.execute(text(SUMMARIES_AND_JOBS))).one()
    return dict(row._mapping)


def test_tenants_are_dealt_into_at_most_four_parts_of_a_thousand_or_more() -> None:
    tenants = [uuid.uuid4() for _ in range(9_500)]
    assert claim_parts([]) == []
    assert claim_parts(tenants[:999]) == [tenants[:999]]
    assert [len(part) for part in claim_parts(tenants[:2_001])] == [667, 667, 667]
    parts = claim_parts(tenants)
    assert [len(part) for part in parts] == [2_375] * 4
    assert sorted(t for part in parts for t in part) == sorted(tenants)


async def test_a_burst_is_claimed_in_parts_each_summary_once_with_its_job(
    many_due: Database, settings: Any, database_url: str
) -> None:
    claims = await claim_due_summaries(
        many_due, settings, AT_20H, queue=connect_queue(database_url)
    )

    assert len(claims) == len({claim.summary_id for claim in claims}) == TENANTS
    # Three transactions, each committing its claims with their jobs.
    assert await summaries_and_jobs(many_due) == {
        "summaries": TENANTS,
        "transactions": 3,
        "jobs": TENANTS,
        "together": TENANTS,
    }


async def test_two_ticks_at_once_claim_each_summary_once(
    many_due: Database, settings: Any, database_url: str
) -> None:
    queue = connect_queue(database_url)
    first, second = await asyncio.gather(
        claim_due_summaries(many_due, settings, AT_20H, queue=queue),
        claim_due_summaries(many_due, settings, AT_20H, queue=queue),
    )

    claimed = [claim.summary_id for claim in (*first, *second)]
    assert len(claimed) == len(set(claimed)) == TENANTS
    state = await summaries_and_jobs(many_due)
    assert (state["summaries"], state["jobs"], state["together"]) == (TENANTS, TENANTS, TENANTS)


async def test_a_part_that_fails_leaves_the_others_committed_and_the_next_tick_claims_it(
    many_due: Database, settings: Any, database_url: str
) -> None:
    queue = connect_queue(database_url)
    async with many_due.session() as session:
        group = (await session.execute(text("SELECT min(id::text) FROM grupos"))).scalar_one()
        for statement in REFUSE_ONE_GROUP:
            await session.execute(text(statement.replace("{group}", group)))
    try:
        with pytest.raises(DBAPIError, match="No space left on device"):
            await claim_due_summaries(many_due, settings, AT_20H, queue=queue)
        failed_part = TENANTS - await count(many_due, "SELECT count(*) FROM resumos")
        assert 0 < failed_part < TENANTS  # one part rolled back, whole; the others committed
    finally:
        async with many_due.session() as session:
            for statement in STOP_REFUSING:
                await session.execute(text(statement))

    claims = await claim_due_summaries(many_due, settings, utc(2026, 11, 25, 23, 1), queue=queue)

    assert len(claims) == failed_part
    state = await summaries_and_jobs(many_due)
    assert (state["summaries"], state["jobs"], state["together"]) == (TENANTS, TENANTS, TENANTS)
