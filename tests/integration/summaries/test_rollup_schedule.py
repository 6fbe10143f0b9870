"""Claiming weekly recaps and owners' digests against real PostgreSQL, time frozen at chosen
instants (2026-11-25 is a Wednesday; 20:00 in São Paulo is 23:00 UTC)."""

from __future__ import annotations

import asyncio
from datetime import date, time
from typing import Any

import pytest
from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.summaries.scheduled import (
    DIGEST_TASK,
    RECAP_TASK,
    SUMMARIZE_TASK,
    claim_due_digests,
    claim_due_recaps,
    claim_due_summaries,
    requeue_orphaned_summaries,
)
from intellizap.task_modules import connect_queue
from tests.conftest import make_settings
from tests.factories import count, create_group, create_tenant
from tests.integration.summaries.test_summary_schedule import utc

WEDNESDAY = 3


@pytest.fixture
def settings(database_url: str) -> Any:
    return make_settings(database_url)


async def account(database: Database, instance: str, at: str = "20:00", **values: Any) -> Any:
    tenant = await create_tenant(database, instance, timezone="America/Sao_Paulo", **values)
    async with database.session() as session:
        await session.execute(
            text('UPDATE usuarios SET "horaResumo" = :at WHERE id = :id'),
            {"at": at, "id": tenant.id},
        )
    return tenant


async def weekly_group(database: Database, tenant: Any, n: int, **values: Any) -> Any:
    values.setdefault("summary_enabled", True)
    values.setdefault("weekly_recap_day", WEDNESDAY)
    return await create_group(database, tenant, f"12036340{n:010d}@g.us", **values)


async def recap_days(database: Database) -> list[tuple[Any, date]]:
    async with database.session() as session:
        rows = await session.execute(
            text(
                "SELECT grupo_id, data_referencia FROM resumos WHERE origem = 'semanal' ORDER BY 2"
            )
        )
        return [(row[0], row[1]) for row in rows]


async def jobs_of(database: Database, task: str) -> list[tuple[str, str]]:
    async with database.session() as session:
        rows = await session.execute(
            text(
                "SELECT queueing_lock, lock FROM procrastinate_jobs"
                " WHERE task_name = :task AND status = 'todo' ORDER BY 1"
            ),
            {"task": task},
        )
        return [(row[0], row[1]) for row in rows]


async def test_weekly_recap_is_claimed_once_per_group_and_week_on_its_weekday(
    clean_database: Database, settings: Any
) -> None:
    tenant = await account(clean_database, "weekly")
    group = await weekly_group(clean_database, tenant, 1)
    assert await claim_due_recaps(clean_database, settings, utc(2026, 11, 25, 22, 59)) == []
    [claim] = await claim_due_recaps(clean_database, settings, utc(2026, 11, 25, 23, 0))
    assert claim.group_id == group.id
    assert claim.due_at == utc(2026, 11, 25, 23, 0)
    for minute in range(1, 10):
        assert await claim_due_recaps(clean_database, settings, utc(2026, 11, 25, 23, minute)) == []
    assert await claim_due_recaps(clean_database, settings, utc(2026, 11, 26, 23, 0)) == []  # Thu
    assert len(await claim_due_recaps(clean_database, settings, utc(2026, 12, 2, 23, 0))) == 1
    assert await recap_days(clean_database) == [
        (group.id, date(2026, 11, 25)),
        (group.id, date(2026, 12, 2)),
    ]


async def test_concurrent_ticks_and_a_restart_claim_and_queue_each_recap_once(
    clean_database: Database, settings: Any, database_url: str
) -> None:
    tenant = await account(clean_database, "many")
    groups = [await weekly_group(clean_database, tenant, n) for n in range(12)]
    results = await asyncio.gather(
        *(
            claim_due_recaps(
                clean_database,
                settings,
                utc(2026, 11, 25, 23, 0),
                queue=connect_queue(database_url),
            )
            for _ in range(6)
        )
    )
    assert sum(len(r) for r in results) == 12
    # A restarted process (its own connections) catching up over the whole window claims nothing.
    restarted = Database(database_url, pool_size=2)
    try:
        assert await claim_due_recaps(restarted, settings, utc(2026, 11, 26, 1, 30)) == []
    finally:
        await restarted.dispose()
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 12
    async with clean_database.session() as session:
        ids = dict((await session.execute(text("SELECT grupo_id, id FROM resumos"))).all())
    assert await jobs_of(clean_database, RECAP_TASK) == sorted(
        (f"summary:{ids[g.id]}", f"summary-group:{g.id}") for g in groups
    )


async def test_recap_uses_the_groups_own_hour_else_the_accounts(
    clean_database: Database, settings: Any
) -> None:
    tenant = await account(clean_database, "hours")
    morning = await weekly_group(clean_database, tenant, 1, weekly_recap_time=time(8, 0))
    evening = await weekly_group(clean_database, tenant, 2)
    claims = await claim_due_recaps(clean_database, settings, utc(2026, 11, 25, 11, 0))  # 08:00
    assert [c.group_id for c in claims] == [morning.id]
    claims = await claim_due_recaps(clean_database, settings, utc(2026, 11, 25, 23, 0))  # 20:00
    assert [c.group_id for c in claims] == [evening.id]


async def test_a_late_recap_hour_caught_up_after_midnight_keeps_its_weekday(
    clean_database: Database, settings: Any
) -> None:
    tenant = await account(clean_database, "night", "23:30")
    group = await weekly_group(clean_database, tenant, 1)
    # 00:45 on Thursday in São Paulo: Wednesday's 23:30 recap, caught up.
    assert len(await claim_due_recaps(clean_database, settings, utc(2026, 11, 26, 3, 45))) == 1
    assert await recap_days(clean_database) == [(group.id, date(2026, 11, 25))]


async def test_recap_is_not_claimed_for_inactive_disabled_or_over_limit_groups(
    clean_database: Database, settings: Any
) -> None:
    tenant = await account(clean_database, "limits", max_groups=2)
    oldest = await weekly_group(clean_database, tenant, 1)
    await weekly_group(clean_database, tenant, 2, weekly_recap_day=None)  # counts, no recap
    await weekly_group(clean_database, tenant, 3)  # beyond max_grupos
    await weekly_group(clean_database, tenant, 4, active=False)
    await weekly_group(clean_database, tenant, 5, summary_enabled=False)
    no_hour = await account(clean_database, "no-hour", "")  # no valid hour anywhere
    await weekly_group(clean_database, no_hour, 6)
    claims = []
    for hour in range(24):
        claims += await claim_due_recaps(clean_database, settings, utc(2026, 11, 25, hour, 0))
        claims += await claim_due_recaps(clean_database, settings, utc(2026, 11, 26, hour, 0))
    assert [c.group_id for c in claims] == [oldest.id]


async def test_existing_rows_get_no_recap_and_no_digest(
    clean_database: Database, settings: Any
) -> None:
    tenant = await account(clean_database, "legacy", owner_number="5511988887777")
    await create_group(clean_database, tenant, summary_enabled=True)
    for hour in range(24):
        now = utc(2026, 11, 25, hour, 0)
        await claim_due_summaries(clean_database, settings, now)
        async with clean_database.session() as session:  # the day's summaries are done
            await session.execute(text("UPDATE resumos SET status = 'enviado'"))
        assert await claim_due_recaps(clean_database, settings, now) == []
        assert await claim_due_digests(clean_database, settings, now) == []
    assert await count(clean_database, "SELECT count(*) FROM resumos WHERE origem = 'agendado'")
    assert await count(clean_database, "SELECT count(*) FROM resumos WHERE origem = 'semanal'") == 0
    assert await count(clean_database, "SELECT count(*) FROM resumos_dono") == 0


async def set_status(database: Database, group: Any, status: str) -> None:
    async with database.session() as session:
        await session.execute(
            text("UPDATE resumos SET status = CAST(:s AS status_resumo) WHERE grupo_id = :g"),
            {"s": status, "g": group.id},
        )


async def test_digest_waits_for_the_days_summaries_then_is_claimed_once(
    clean_database: Database, settings: Any, database_url: str
) -> None:
    tenant = await account(clean_database, "owner", owner_digest_enabled=True)
    first = await create_group(clean_database, tenant, "1@g.us", summary_enabled=True)
    second = await create_group(clean_database, tenant, "2@g.us", summary_enabled=True)
    at_hour = utc(2026, 11, 25, 23, 0)
    assert await claim_due_digests(clean_database, settings, at_hour) == []  # no dailies yet
    assert len(await claim_due_summaries(clean_database, settings, at_hour)) == 2
    assert await claim_due_digests(clean_database, settings, utc(2026, 11, 25, 23, 5)) == []
    await set_status(clean_database, first, "enviado")
    assert await claim_due_digests(clean_database, settings, utc(2026, 11, 25, 23, 6)) == []
    await set_status(clean_database, second, "erro")  # too few messages: a quiet group
    results = await asyncio.gather(
        *(
            claim_due_digests(
                clean_database,
                settings,
                utc(2026, 11, 25, 23, 7),
                queue=connect_queue(database_url),
            )
            for _ in range(6)
        )
    )
    [[claim]] = [r for r in results if r]
    assert claim.tenant_id == tenant.id
    assert await claim_due_digests(clean_database, settings, utc(2026, 11, 25, 23, 40)) == []
    assert await jobs_of(clean_database, DIGEST_TASK) == [
        (f"digest:{claim.digest_id}", f"digest-account:{tenant.id}")
    ]
    async with clean_database.session() as session:
        day = (await session.execute(text("SELECT data_referencia FROM resumos_dono"))).scalar()
    assert day == date(2026, 11, 25)
    # The next day has its own digest.
    await claim_due_summaries(clean_database, settings, utc(2026, 11, 26, 23, 0))
    await set_status(clean_database, first, "enviado")
    await set_status(clean_database, second, "enviado")
    assert len(await claim_due_digests(clean_database, settings, utc(2026, 11, 26, 23, 1))) == 1


async def test_a_stuck_summary_holds_the_digest_back_30_minutes_at_most(
    clean_database: Database, settings: Any
) -> None:
    tenant = await account(clean_database, "stuck", owner_digest_enabled=True)
    await create_group(clean_database, tenant, summary_enabled=True)
    await claim_due_summaries(clean_database, settings, utc(2026, 11, 25, 23, 0))
    assert await claim_due_digests(clean_database, settings, utc(2026, 11, 25, 23, 29)) == []
    assert len(await claim_due_digests(clean_database, settings, utc(2026, 11, 25, 23, 30))) == 1
    # Past the catch-up window a digest is no longer claimed (the next day's is).
    other = await account(clean_database, "late", owner_digest_enabled=True)
    assert await claim_due_digests(clean_database, settings, utc(2026, 11, 26, 2, 1)) == []
    assert (
        await count(
            clean_database, "SELECT count(*) FROM resumos_dono WHERE usuario_id = :t", t=other.id
        )
        == 0
    )


async def test_the_orphan_sweep_queues_each_kind_with_its_own_task(
    clean_database: Database, settings: Any, database_url: str
) -> None:
    tenant = await account(clean_database, "orphans", owner_digest_enabled=True)
    daily = await create_group(clean_database, tenant, "1@g.us", summary_enabled=True)
    weekly = await weekly_group(clean_database, tenant, 2)
    async with clean_database.session() as session:
        for group, origin in ((daily, "agendado"), (weekly, "semanal")):
            await session.execute(
                text(
                    "INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia,"
                    " created_at) VALUES (:g, :t, 'pendente', :o, current_date,"
                    " now() - interval '5 minutes')"
                ),
                {"g": group.id, "t": tenant.id, "o": origin},
            )
        await session.execute(
            text(
                "INSERT INTO resumos_dono (usuario_id, data_referencia, created_at)"
                " VALUES (:t, current_date, now() - interval '5 minutes')"
            ),
            {"t": tenant.id},
        )
    async with connect_queue(database_url).open_async() as queue:
        assert await requeue_orphaned_summaries(clean_database, queue, settings) == 3
        assert await requeue_orphaned_summaries(clean_database, queue, settings) == 0
    [(_, summarize_lock)] = await jobs_of(clean_database, SUMMARIZE_TASK)
    [(_, recap_lock)] = await jobs_of(clean_database, RECAP_TASK)
    [(_, digest_lock)] = await jobs_of(clean_database, DIGEST_TASK)
    assert (summarize_lock, recap_lock, digest_lock) == (
        f"summary-group:{daily.id}",
        f"summary-group:{weekly.id}",
        f"digest-account:{tenant.id}",
    )
