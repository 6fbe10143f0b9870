"""The summary tick against real PostgreSQL, with time frozen at chosen instants."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.summaries.scheduled import claim_due_summaries
from intellizap.task_modules import connect_queue
from intellizap.tenants.quota import cycle_start
from tests.conftest import make_settings
from tests.factories import count, create_group, create_tenant


async def tenant_with_summary(
    database: Database, instance: str, at: str, zone: str | None = "America/Sao_Paulo", **group: Any
) -> Any:
    tenant = await create_tenant(database, instance, timezone=zone)
    async with database.session() as session:
        await session.execute(
            text('UPDATE usuarios SET "horaResumo" = :at WHERE id = :id'),
            {"at": at, "id": tenant.id},
        )
    return await create_group(
        database,
        tenant,
        f"1203634{abs(hash(instance)) % 10**11:011d}@g.us",
        summary_enabled=True,
        **group,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def settings(database_url: str) -> Any:
    return make_settings(database_url)


async def claimed_days(database: Database) -> list[tuple[str, date]]:
    async with database.session() as session:
        rows = await session.execute(
            text(
                "SELECT g.grupo_id_externo, r.data_referencia"
                " FROM resumos r JOIN grupos g ON g.id = r.grupo_id ORDER BY 2"
            )
        )
        return [(row[0], row[1]) for row in rows]


async def test_summary_is_due_at_the_tenants_local_hour_once(
    clean_database: Database, settings: Any
) -> None:
    group = await tenant_with_summary(clean_database, "sp", "20:00")
    assert await claim_due_summaries(clean_database, settings, utc(2026, 11, 25, 22, 59)) == []
    [claim] = await claim_due_summaries(
        clean_database, settings, utc(2026, 11, 25, 23, 0)
    )  # 20:00 in São Paulo
    assert claim.group_id == group.id
    for minute in range(1, 10):
        assert (
            await claim_due_summaries(clean_database, settings, utc(2026, 11, 25, 23, minute)) == []
        )
    assert await claimed_days(clean_database) == [(group.jid, date(2026, 11, 25))]
    # The next local day gets its own summary.
    assert len(await claim_due_summaries(clean_database, settings, utc(2026, 11, 26, 23, 0))) == 1


async def test_each_tenant_is_scheduled_in_its_own_time_zone(
    clean_database: Database, settings: Any
) -> None:
    tokyo = await tenant_with_summary(clean_database, "tokyo", "09:00", "Asia/Tokyo")
    default = await tenant_with_summary(
        clean_database, "default", "09:00", None
    )  # DEFAULT_TIMEZONE
    broken = await tenant_with_summary(
        clean_database, "broken", "09:00", "Not/AZone"
    )  # falls back too
    claims = await claim_due_summaries(
        clean_database, settings, utc(2026, 11, 25, 0, 0)
    )  # 09:00 Tokyo
    assert [c.group_id for c in claims] == [tokyo.id]
    claims = await claim_due_summaries(
        clean_database, settings, utc(2026, 11, 25, 12, 0)
    )  # 09:00 São Paulo
    assert {c.group_id for c in claims} == {default.id, broken.id}


async def test_downtime_is_caught_up_within_the_grace_window_and_skipped_after(
    clean_database: Database, settings: Any
) -> None:
    late = await tenant_with_summary(clean_database, "late", "20:00")
    await tenant_with_summary(clean_database, "missed", "18:00")
    # Back at 22:30 São Paulo (01:30 UTC): 20:00 is 2h30 late (caught up), 18:00 is 4h30 late (skipped).
    claims = await claim_due_summaries(clean_database, settings, utc(2026, 11, 26, 1, 30))
    assert [c.group_id for c in claims] == [late.id]
    assert await claimed_days(clean_database) == [(late.jid, date(2026, 11, 25))]


async def test_an_hour_near_midnight_belongs_to_the_day_it_was_scheduled(
    clean_database: Database, settings: Any
) -> None:
    group = await tenant_with_summary(clean_database, "night", "23:30")
    # 00:45 local on the 26th, the service was down at 23:30 on the 25th.
    assert len(await claim_due_summaries(clean_database, settings, utc(2026, 11, 26, 3, 45))) == 1
    assert await claimed_days(clean_database) == [(group.jid, date(2026, 11, 25))]


@pytest.mark.parametrize("hour", ["", "8h", "25:00", "ab:cd", None])
async def test_invalid_or_missing_hours_are_never_due(
    clean_database: Database, settings: Any, hour: str | None
) -> None:
    tenant = await create_tenant(clean_database, "odd")
    async with clean_database.session() as session:
        await session.execute(
            text('UPDATE usuarios SET "horaResumo" = :at WHERE id = :id'),
            {"at": hour, "id": tenant.id},
        )
    await create_group(clean_database, tenant, summary_enabled=True)
    for hour_utc in range(24):
        assert (
            await claim_due_summaries(clean_database, settings, utc(2026, 11, 25, hour_utc, 0))
            == []
        )


async def test_disabled_inactive_and_over_limit_groups_are_not_scheduled(
    clean_database: Database, settings: Any
) -> None:
    tenant = await create_tenant(clean_database, "limits", max_groups=1)
    async with clean_database.session() as session:
        await session.execute(
            text("UPDATE usuarios SET \"horaResumo\" = '20:00' WHERE id = :id"), {"id": tenant.id}
        )
    oldest = await create_group(clean_database, tenant, "1@g.us", summary_enabled=True)
    await create_group(clean_database, tenant, "2@g.us", summary_enabled=True)  # over max_grupos
    await create_group(clean_database, tenant, "3@g.us", summary_enabled=False)
    await create_group(clean_database, tenant, "4@g.us", active=False, summary_enabled=True)
    claims = await claim_due_summaries(clean_database, settings, utc(2026, 11, 25, 23, 0))
    assert [c.group_id for c in claims] == [oldest.id]


async def test_concurrent_ticks_claim_each_summary_once(
    clean_database: Database, settings: Any
) -> None:
    for n in range(20):
        await tenant_with_summary(clean_database, f"t{n}", "20:00")
    results = await asyncio.gather(
        *(claim_due_summaries(clean_database, settings, utc(2026, 11, 25, 23, 0)) for _ in range(6))
    )
    assert sum(len(r) for r in results) == 20
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 20


@pytest.mark.parametrize(
    ("today", "renewal_day", "expected"),
    [
        (date(2026, 11, 25), 1, date(2026, 11, 1)),
        (date(2026, 11, 25), 25, date(2026, 11, 25)),
        (date(2026, 11, 24), 25, date(2026, 10, 25)),
        (date(2026, 1, 10), 15, date(2025, 12, 15)),
        (date(2026, 3, 1), 28, date(2026, 2, 28)),  # February has a 28th: no month is skipped
        (date(2026, 3, 1), 31, date(2026, 2, 28)),  # out-of-range days are clamped to 28
        (date(2026, 3, 5), None, date(2026, 3, 1)),
        (date(2026, 3, 5), 0, date(2026, 3, 1)),
    ],
)
def test_quota_cycle_starts_on_the_renewal_day(
    today: date, renewal_day: int | None, expected: date
) -> None:
    assert cycle_start(today, renewal_day) == expected


async def test_a_claim_whose_process_died_before_queueing_is_requeued_once(
    clean_database: Database, database_url: str, settings: Any
) -> None:
    from intellizap.summaries.scheduled import requeue_orphaned_summaries

    orphan = await tenant_with_summary(clean_database, "orphan", "20:00")
    fresh = await tenant_with_summary(clean_database, "fresh", "20:00")
    being_written = await tenant_with_summary(clean_database, "busy", "20:00")
    written = await tenant_with_summary(clean_database, "written", "20:00")
    async with clean_database.session() as session:
        for group, age, content in (
            (orphan, "5 minutes", None),
            (fresh, "10 seconds", None),  # its claim is still queueing it
            (being_written, "5 minutes", None),
            (written, "5 minutes", "já gerado; os envios estão na fila"),
        ):
            await session.execute(
                text(
                    "INSERT INTO resumos (grupo_id, usuario_id, status, origem, conteudo, created_at)"
                    " SELECT id, usuario_id, 'pendente', 'agendado', :content,"
                    " now() - CAST(:age AS interval) FROM grupos WHERE id = :g"
                ),
                {"g": group.id, "age": age, "content": content},
            )
        # A worker is writing a summary of the busy group right now.
        await session.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status)"
                " VALUES ('summaries', 'summarize', :lock, '{}', 'doing')"
            ),
            {"lock": f"summary-group:{being_written.id}"},
        )

    async with connect_queue(database_url).open_async() as queue:
        assert await requeue_orphaned_summaries(clean_database, queue, settings) == 1
        # now it has a job
        assert await requeue_orphaned_summaries(clean_database, queue, settings) == 0

    async with clean_database.session() as session:
        queued = (
            (
                await session.execute(
                    text(
                        "SELECT r.grupo_id FROM procrastinate_jobs j JOIN resumos r"
                        " ON j.queueing_lock = 'summary:' || r.id WHERE j.status = 'todo'"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert queued == [orphan.id]
