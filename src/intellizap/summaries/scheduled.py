"""The summary scheduler: every minute, claim the summaries that are due and queue them.

One statement does it for every tenant at once (no loop over tenants): it finds the groups with
``resumo_ativo`` whose ``"horaResumo"`` has passed in their tenant's time zone (today, or
yesterday for times near midnight) within the catch-up window, and inserts their ``resumos`` row.
The partial unique index on (``grupo_id``, ``data_referencia``) for ``origem = 'agendado'`` makes
the claim exactly-once, whatever the number of workers, retries or restarts. A day whose window
passed while the service was down is skipped and logged. Ordinary ticks examine only the last
minutes; every quarter hour a tick examines the whole catch-up window, so after downtime the
missed summaries go out within 15 minutes.

Claiming (the rows) and queueing (their jobs) happen in one transaction, the jobs inserted by a
single statement however many are due, through the claim's own connection. Older versions
committed the claim first and queued after, so a process dying in between left a ``pendente``
summary no job would write; catch-up ticks (and each process's first tick) still re-queue such
orphans (see ``_ORPHANS``).

A summary's job carries its deadline, ``SUMMARY_CATCHUP_HOURS`` after its due time: a throttled
or failing LLM provider makes it retry until then, not for a fixed number of attempts.

The same tick, after the daily claim has committed, claims the weekly recaps (``origem =
'semanal'``, on the group's ``resumo_semanal_dia`` at its hour; exactly once per group and week
through their own partial unique index) and then the owners' daily digests (``resumos_dono``,
unique per account and day; due once the day's summaries are written, see ``rollups_repository``),
each with its job in the claim's transaction, like the daily one.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import procrastinate
from sqlalchemy import text

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.logging import get_logger
from intellizap.observability.summaries import observe_tick
from intellizap.settings import Settings
from intellizap.summaries import rollups_repository

log = get_logger(__name__)

SUMMARIZE_TASK = "summarize"
RECAP_TASK = "weekly_recap"
DIGEST_TASK = "owner_digest"

# Local wall-clock "now" is computed once per time zone (a few hundred rows), not per tenant; each
# tenant is then a hash-join probe and a comparison on columns a trigger keeps parsed (migration
# 0005), and groups are read only for due tenants, by index. Tenants with no or an unknown zone
# use DEFAULT_TIMEZONE. (Wall-clock comparison: on a daylight
# saving change a summary inside the shifted hour may move by that hour, once.)
_CLAIM = text(
    """
    WITH zone_now AS (
        SELECT z.zone, CAST(:now AS timestamptz) AT TIME ZONE z.zone AS local_now
        FROM unnest(CAST(:zones AS text[])) AS z (zone)
    ),
    tenants AS (
        SELECT u.id, u.max_grupos, u.hora_resumo_local AS at_time,
               COALESCE(zn.local_now, CAST(:now AS timestamptz) AT TIME ZONE :default_zone)
                   AS local_now,
               COALESCE(zn.zone, :default_zone) AS zone
        FROM usuarios u
        LEFT JOIN zone_now zn ON zn.zone = u.fuso_efetivo
        WHERE u.hora_resumo_local IS NOT NULL
    ),
    -- The most recent local occurrence of each tenant's hour: today's, or yesterday's when
    -- today's is still ahead (so 23:30 caught up at 00:45 belongs to the day before).
    latest AS (
        SELECT id AS tenant_id, max_grupos, local_now, zone,
               CAST(local_now AS date) - CAST(CAST(local_now AS time) < at_time AS integer) AS day,
               at_time
        FROM tenants
    ),
    -- MATERIALIZED: filter the (few) due tenants first, then look up their groups by index.
    due AS MATERIALIZED (
        SELECT tenant_id, max_grupos, day, day + at_time AS at_local, local_now, zone FROM latest
        WHERE day + at_time > local_now - :window
           OR (day + at_time <= local_now - :grace
               AND day + at_time > local_now - :grace - interval '1 minute')
    ),
    due_groups AS (
        SELECT g.id AS group_id, due.tenant_id, due.day, due.at_local, due.local_now, g.rank,
               due.max_grupos, g.resumo_ativo, due.zone
        FROM due
        CROSS JOIN LATERAL (
            SELECT id, resumo_ativo,
                   row_number() OVER (ORDER BY created_at, id) AS rank
            FROM grupos WHERE usuario_id = due.tenant_id AND ativo
        ) AS g
        WHERE g.resumo_ativo AND (due.max_grupos IS NULL OR g.rank <= due.max_grupos)
    ),
    claimed AS (
        INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia)
        SELECT group_id, tenant_id, 'pendente', 'agendado', day FROM due_groups d
        WHERE at_local > local_now - :window
          -- Already claimed (most of a catch-up tick's window): an index probe, much cheaper
          -- than an insert that conflicts. ON CONFLICT still settles concurrent claims.
          AND NOT EXISTS (
              SELECT 1 FROM resumos r
              WHERE r.grupo_id = d.group_id AND r.origem = 'agendado'
                AND r.data_referencia = d.day
          )
        ON CONFLICT (grupo_id, data_referencia) WHERE origem = 'agendado' DO NOTHING
        RETURNING id, grupo_id
    )
    SELECT 'claimed' AS outcome, c.id, c.grupo_id, d.at_local AT TIME ZONE d.zone AS due_at
    FROM claimed c JOIN due_groups d ON d.group_id = c.grupo_id
    UNION ALL
    SELECT 'missed', NULL, d.group_id, NULL FROM due_groups d
    WHERE d.at_local <= d.local_now - :grace
      AND NOT EXISTS (
          SELECT 1 FROM resumos r
          WHERE r.grupo_id = d.group_id AND r.origem = 'agendado' AND r.data_referencia = d.day
      )
    """
)

_KNOWN_ZONES = text("SELECT array_agg(name) FROM pg_timezone_names")
_zones: list[str] = []


async def _known_zones(database: Database) -> list[str]:
    """The time zones this PostgreSQL knows (read once per process: it never changes)."""
    if not _zones:
        async with database.engine.connect() as conn:
            known = (await conn.execute(_KNOWN_ZONES)).scalar_one()
        # Assigned whole after the await: two first callers at once must not both append.
        _zones[:] = sorted(set(known))
    return _zones


@dataclass(frozen=True, slots=True)
class Claim:
    summary_id: uuid.UUID
    group_id: uuid.UUID
    due_at: datetime
    """When the summary was due (the tenant's hour, in its zone): its deadline counts from it."""


#: Ordinary ticks look this far back (missed ticks, slow workers); every ``CATCH_UP_EVERY``
#: minutes a tick looks back the whole ``SUMMARY_CATCHUP_HOURS`` (downtime), which costs more.
RECENT_WINDOW = timedelta(minutes=10)
CATCH_UP_EVERY = 15


async def claim_due_summaries(
    database: Database,
    settings: Settings,
    now: datetime,
    *,
    full_catch_up: bool = True,
    queue: procrastinate.App | None = None,
) -> list[Claim]:
    """Create the ``resumos`` rows of every summary due at ``now``; each at most once per day.
    Without ``full_catch_up`` only the last ``RECENT_WINDOW`` is examined. With ``queue``, each
    claim's job is queued in the same transaction (all in one statement): claimed and queued
    commit together, or neither does."""
    grace = timedelta(hours=settings.summary_catchup_hours)
    async with database.session() as session:
        rows = (
            await session.execute(
                _CLAIM,
                {
                    "now": now,
                    "zones": await _known_zones(database),
                    "grace": grace,
                    "window": grace if full_catch_up else min(grace, RECENT_WINDOW),
                    "default_zone": settings.default_timezone,
                },
            )
        ).all()
        claims = [
            Claim(summary_id, group_id, due_at.astimezone(UTC))
            for outcome, summary_id, group_id, due_at in rows
            if outcome == "claimed"
        ]
        if queue is not None:
            await jobs.defer_in_transaction(
                session,
                queue,
                SUMMARIZE_TASK,
                [summary_job(c.summary_id, c.group_id, c.due_at + grace) for c in claims],
            )
    if queue is not None and len(claims) >= jobs.BULK_DEFER:
        await jobs.refresh_queue_statistics(database)
    for outcome, _, group_id, _ in rows:
        if outcome == "missed":
            log.warning(
                "scheduled summary skipped: the catch-up window passed while the service was down",
                grupo_id=str(group_id),
            )
    return claims


def summary_job(summary_id: uuid.UUID, group_id: uuid.UUID, deadline: datetime) -> jobs.JobSpec:
    """The job that writes a summary: one waiting per summary, one running per group, retried
    until ``deadline`` (see ``summaries.tasks``)."""
    return jobs.JobSpec(
        args={"summary_id": str(summary_id), "deadline": deadline.isoformat()},
        queueing_lock=f"summary:{summary_id}",
        lock=f"summary-group:{group_id}",
    )


async def claim_due_recaps(
    database: Database,
    settings: Settings,
    now: datetime,
    *,
    full_catch_up: bool = True,
    queue: procrastinate.App | None = None,
) -> list[Claim]:
    """Create the ``resumos`` row (``origem = 'semanal'``) of every weekly recap due at ``now``,
    each at most once per group and week, with its job in the same transaction (``queue``)."""
    grace = timedelta(hours=settings.summary_catchup_hours)
    async with database.session() as session:
        rows = (
            await session.execute(
                rollups_repository.RECAP_CLAIM,
                {
                    "now": now,
                    "zones": await _known_zones(database),
                    "window": grace if full_catch_up else min(grace, RECENT_WINDOW),
                    "default_zone": settings.default_timezone,
                },
            )
        ).all()
        claims = [
            Claim(summary_id, group_id, due.astimezone(UTC)) for summary_id, group_id, due in rows
        ]
        if queue is not None:
            await jobs.defer_in_transaction(
                session,
                queue,
                RECAP_TASK,
                [summary_job(c.summary_id, c.group_id, c.due_at + grace) for c in claims],
            )
    return claims


@dataclass(frozen=True, slots=True)
class DigestClaim:
    digest_id: uuid.UUID
    tenant_id: uuid.UUID
    due_at: datetime


#: How long an owner's digest waits for the day's summaries still being written.
DIGEST_WAIT = timedelta(minutes=30)


async def claim_due_digests(
    database: Database, settings: Settings, now: datetime, *, queue: procrastinate.App | None = None
) -> list[DigestClaim]:
    """Create the ``resumos_dono`` row of every owner's digest due at ``now`` (at most one per
    account and local day), with its job in the same transaction (``queue``). Always looks over
    the whole catch-up window: when a digest is due depends on the day's summaries, not only on
    the clock (few accounts turn it on, so this costs little)."""
    grace = timedelta(hours=settings.summary_catchup_hours)
    async with database.session() as session:
        rows = (
            await session.execute(
                rollups_repository.DIGEST_CLAIM,
                {
                    "now": now,
                    "zones": await _known_zones(database),
                    "window": grace,
                    "wait": min(DIGEST_WAIT, grace),
                    "default_zone": settings.default_timezone,
                },
            )
        ).all()
        claims = [
            DigestClaim(digest_id, tenant_id, due.astimezone(UTC))
            for digest_id, tenant_id, due in rows
        ]
        if queue is not None:
            await jobs.defer_in_transaction(
                session,
                queue,
                DIGEST_TASK,
                [digest_job(c.digest_id, c.tenant_id, c.due_at + grace) for c in claims],
            )
    return claims


def digest_job(digest_id: uuid.UUID, tenant_id: uuid.UUID, deadline: datetime) -> jobs.JobSpec:
    """The job that writes an owner's digest: one waiting per digest, one running per account."""
    return jobs.JobSpec(
        args={"digest_id": str(digest_id), "deadline": deadline.isoformat()},
        queueing_lock=f"digest:{digest_id}",
        lock=f"digest-account:{tenant_id}",
    )


# A summary not yet written (no content), old enough that its claim's own defer is long done, with
# no job waiting for it (its queueing lock) and none writing a summary of its group (the lock):
# it was claimed by a process that died before queueing it. Both job lookups use procrastinate's
# partial unique indexes; the pending rows come from the partial index of migration 0006.
_ORPHANS = text(
    """
    SELECT r.id, r.grupo_id, r.origem = 'semanal' AS weekly FROM resumos r
    WHERE r.status = 'pendente' AND r.conteudo IS NULL
      AND EXISTS (SELECT 1 FROM grupos g WHERE g.id = r.grupo_id AND g.usuario_id = r.usuario_id)
      AND r.created_at < now() - make_interval(secs => :settle)
      AND r.created_at > now() - interval '1 day'
      AND NOT EXISTS (
          SELECT 1 FROM procrastinate_jobs j
          WHERE j.status = 'todo' AND j.queueing_lock = 'summary:' || CAST(r.id AS text))
      AND NOT EXISTS (
          SELECT 1 FROM procrastinate_jobs j
          WHERE j.status = 'doing' AND j.lock = 'summary-group:' || CAST(r.grupo_id AS text))
    ORDER BY r.created_at
    LIMIT 1000
    """
)
#: The event loops (one per worker) that have swept for orphans at least once.
_swept: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()

#: How long a fresh claim is given to queue its own job before the sweep considers it orphaned.
ORPHAN_SETTLE = timedelta(minutes=2)


async def requeue_orphaned_summaries(
    database: Database, queue: procrastinate.App, settings: Settings
) -> int:
    """Queue the summaries, weekly recaps and owner digests that were claimed but never queued
    (each with its own task); returns how many. Claims are queued in their own transaction now,
    so these come from an older version (or a hand-made row); found late, each gets a whole
    catch-up window from now."""
    deadline = datetime.now(UTC) + timedelta(hours=settings.summary_catchup_hours)
    settle = {"settle": ORPHAN_SETTLE.total_seconds()}
    async with database.session() as session:
        rows = (await session.execute(_ORPHANS, settle)).all()
        digests = (await session.execute(rollups_repository.DIGEST_ORPHANS, settle)).all()
        for _, group_id, _ in rows:
            log.warning(
                "re-queueing a summary that was claimed but never queued", grupo_id=str(group_id)
            )
        for weekly, task in ((False, SUMMARIZE_TASK), (True, RECAP_TASK)):
            await jobs.defer_in_transaction(
                session,
                queue,
                task,
                [summary_job(s, group, deadline) for s, group, w in rows if w is weekly],
            )
        for _, tenant_id in digests:
            log.warning(
                "re-queueing an owner digest that was claimed but never queued",
                usuario_id=str(tenant_id),
            )
        await jobs.defer_in_transaction(
            session,
            queue,
            DIGEST_TASK,
            [digest_job(digest_id, tenant_id, deadline) for digest_id, tenant_id in digests],
        )
    return len(rows) + len(digests)


@jobs.app.periodic(cron="* * * * *", periodic_id="summary-tick")
@jobs.app.task(name="summary_tick", queue="summaries", pass_context=True)
async def summary_tick(job_context: procrastinate.JobContext, timestamp: int) -> int:
    context = jobs.context_of(job_context)
    now = datetime.fromtimestamp(timestamp, UTC)
    loop = asyncio.get_running_loop()
    first_tick = loop not in _swept
    # A process's first tick (a restart) catches up too: the digest claim below must find the
    # daily summaries missed while it was down already claimed, not take their groups as quiet.
    catching_up = now.minute % CATCH_UP_EVERY == 0 or first_tick
    database, settings, queue = context.database, context.settings, job_context.app
    with observe_tick() as tick:
        claims = await claim_due_summaries(
            database, settings, now, full_catch_up=catching_up, queue=queue
        )
        tick.claimed(len(claims))
    # Each claim commits before the next starts: a recap or digest sees the day's summaries.
    recaps = await claim_due_recaps(database, settings, now, full_catch_up=catching_up, queue=queue)
    digests = await claim_due_digests(database, settings, now, queue=queue)
    # Orphans only come from older versions now (claims are queued in their own transaction):
    # looked for with the catch-up, and on a process's first tick (a restart after a crash),
    # not every minute (the sweep reads every pending summary, thousands after a 09:00 burst).
    if catching_up:
        _swept.add(loop)
        await requeue_orphaned_summaries(database, queue, settings)
    return len(claims) + len(recaps) + len(digests)
