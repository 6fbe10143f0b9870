"""The summary scheduler: every minute, claim the summaries that are due and queue them.

Set-based, for every tenant at once (no loop over tenants): one statement finds the tenants whose
summary hour has passed in their time zone (today, or yesterday for times near midnight) within
the catch-up window; another, for those tenants, inserts the ``resumos`` row of each of their
groups with ``resumo_ativo`` — split into parts run at once when many are due (a 09:00 burst).
The partial unique index on (``grupo_id``, ``data_referencia``) for ``origem = 'agendado'`` makes
the claim exactly-once, whatever the number of workers, retries or restarts. A day whose window
passed while the service was down is skipped and logged. Ordinary ticks examine only the last
minutes; every quarter hour a tick examines the whole catch-up window, so after downtime the
missed summaries go out within 15 minutes.

Claiming (the rows) and queueing (their jobs) happen in one statement per part, however many
are due: the claim's own, which makes each claim's job from its row without the rows travelling
to Python and back (``claims_repository``, ``jobs.deferrer``), so claims and jobs commit
together. Older versions committed the claim first and queued after, so a process dying in
between left a ``pendente`` summary no job would write; catch-up ticks (and each process's
first tick) still re-queue such orphans (see ``repository.orphaned_summaries``). After a burst
the tick analyzes the job table (``jobs.refresh_queue_statistics``), once the jobs are
committed.

A summary's job carries its deadline, ``SUMMARY_CATCHUP_HOURS`` after its due time: a throttled
or failing LLM provider makes it retry until then, not for a fixed number of attempts.

The same tick, after the daily claim has committed, claims the weekly recaps (``origem =
'semanal'``, on the group's ``resumo_semanal_dia`` at its hour; exactly once per group and week
through their own partial unique index) and then the owners' daily digests (``resumos_dono``,
unique per account and day; due once the day's summaries are written, see ``claims_repository``),
each with its jobs queued by its claim statement, like the daily one.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import procrastinate

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.logging import get_logger
from intellizap.observability.summaries import observe_tick
from intellizap.settings import Settings
from intellizap.summaries import claims_repository, repository, rollups_repository

log = get_logger(__name__)

SUMMARIZE_TASK = "summarize"
RECAP_TASK = "weekly_recap"
DIGEST_TASK = "owner_digest"


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


async def _due_window(
    database: Database, settings: Settings, now: datetime, *, full_catch_up: bool
) -> claims_repository.DueWindow:
    """What a claim at ``now`` examines: the whole catch-up window, or its last minutes."""
    grace = timedelta(hours=settings.summary_catchup_hours)
    return claims_repository.DueWindow(
        now=now,
        window=grace if full_catch_up else min(grace, RECENT_WINDOW),
        grace=grace,
        zones=await claims_repository.known_zones(database),
        default_zone=settings.default_timezone,
    )


#: A tick with many tenants due claims them in parts, at once, each part a transaction of its own
#: on its own connection (its claims and their jobs commit together). A claim is PostgreSQL's
#: CPU (each row's insert, keys and indexes, each job's triggers), one core per statement: a
#: 09:00 burst's 10,000 claims took 1.7 s in one statement and 1.15 s in two on a 2-core server
#: (bench/scheduler.py). Up to ``CLAIM_PARTS`` parts of at least ``CLAIM_PART_TENANTS`` tenants.
CLAIM_PARTS = 4
CLAIM_PART_TENANTS = 1_000


def claim_parts(tenants: list[uuid.UUID]) -> list[list[uuid.UUID]]:
    """``tenants`` dealt into the parts claimed at once: none for none, one for a few."""
    count = min(CLAIM_PARTS, -(-len(tenants) // CLAIM_PART_TENANTS))
    return [tenants[part::count] for part in range(count)]


async def claim_due_summaries(
    database: Database,
    settings: Settings,
    now: datetime,
    *,
    full_catch_up: bool = True,
    queue: procrastinate.Blueprint | None = None,
) -> list[Claim]:
    """Create the ``resumos`` rows of every summary due at ``now``; each at most once per day.
    Without ``full_catch_up`` only the last ``RECENT_WINDOW`` is examined. With ``queue``, the
    claim statement also queues each claim's job (:func:`summary_job`'s, made in SQL): claimed
    and queued commit together, or neither does; after a bulk defer the job table is analyzed,
    the jobs already committed. Many tenants due are claimed in parts at once
    (:func:`claim_parts`); a part that fails is raised once the others have committed theirs."""
    due = await _due_window(database, settings, now, full_catch_up=full_catch_up)
    async with database.session() as session:
        tenants = await claims_repository.due_summary_tenants(session, due)
    defer = None if queue is None else jobs.deferrer(queue, SUMMARIZE_TASK)

    async def claim(part: list[uuid.UUID]) -> repository.Rows:
        async with database.session() as session:
            return await claims_repository.claim_due_summary_rows(session, due, part, defer)

    parts = await asyncio.gather(*map(claim, claim_parts(tenants)), return_exceptions=True)
    rows = [row for part in parts if not isinstance(part, BaseException) for row in part]
    claims = [
        Claim(summary_id, group_id, due_at.astimezone(UTC))
        for outcome, summary_id, group_id, due_at in rows
        if outcome == "claimed"
    ]
    if queue is not None:
        await jobs.refresh_queue_statistics(database, len(claims))
    for outcome, _, group_id, _ in rows:
        if outcome == "missed":
            log.warning(
                "scheduled summary skipped: the catch-up window passed while the service was down",
                grupo_id=str(group_id),
            )
    for part in parts:
        if isinstance(part, BaseException):
            raise part
    return claims


def summary_job(summary_id: uuid.UUID, group_id: uuid.UUID, deadline: datetime) -> jobs.JobSpec:
    """The job that writes a summary: one waiting per summary, one running per group, retried
    until ``deadline`` (see ``summaries.tasks``). The tick's claims make the same in SQL
    (``claims_repository``); this one is for summaries claimed apart (on demand, orphans)."""
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
    queue: procrastinate.Blueprint | None = None,
) -> list[Claim]:
    """Create the ``resumos`` row (``origem = 'semanal'``) of every weekly recap due at ``now``,
    each at most once per group and week, with its job (:func:`summary_job`'s) queued by the same
    statement (``queue``)."""
    due = await _due_window(database, settings, now, full_catch_up=full_catch_up)
    defer = None if queue is None else jobs.deferrer(queue, RECAP_TASK)
    async with database.session() as session:
        rows = await claims_repository.claim_due_recap_rows(session, due, defer)
    claims = [
        Claim(summary_id, group_id, due_at.astimezone(UTC)) for summary_id, group_id, due_at in rows
    ]
    if queue is not None:
        await jobs.refresh_queue_statistics(database, len(claims))
    return claims


@dataclass(frozen=True, slots=True)
class DigestClaim:
    digest_id: uuid.UUID
    tenant_id: uuid.UUID
    due_at: datetime


#: How long an owner's digest waits for the day's summaries still being written.
DIGEST_WAIT = timedelta(minutes=30)


async def claim_due_digests(
    database: Database,
    settings: Settings,
    now: datetime,
    *,
    queue: procrastinate.Blueprint | None = None,
) -> list[DigestClaim]:
    """Create the ``resumos_dono`` row of every owner's digest due at ``now`` (at most one per
    account and local day), with its job (:func:`digest_job`'s) queued by the same statement
    (``queue``). Always looks over the whole catch-up window: when a digest is due depends on the
    day's summaries, not only on the clock (few accounts turn it on, so this costs little)."""
    due = await _due_window(database, settings, now, full_catch_up=True)
    defer = None if queue is None else jobs.deferrer(queue, DIGEST_TASK)
    async with database.session() as session:
        rows = await claims_repository.claim_due_digest_rows(
            session, due, min(DIGEST_WAIT, due.grace), defer
        )
    claims = [
        DigestClaim(digest_id, tenant_id, due_at.astimezone(UTC))
        for digest_id, tenant_id, due_at in rows
    ]
    if queue is not None:
        await jobs.refresh_queue_statistics(database, len(claims))
    return claims


def digest_job(digest_id: uuid.UUID, tenant_id: uuid.UUID, deadline: datetime) -> jobs.JobSpec:
    """The job that writes an owner's digest: one waiting per digest, one running per account.
    The tick's claim makes the same in SQL (``claims_repository``); this one is for orphans."""
    return jobs.JobSpec(
        args={"digest_id": str(digest_id), "deadline": deadline.isoformat()},
        queueing_lock=f"digest:{digest_id}",
        lock=f"digest-account:{tenant_id}",
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
    settle = ORPHAN_SETTLE.total_seconds()
    async with database.session() as session:
        rows = await repository.orphaned_summaries(session, settle)
        digests = await rollups_repository.orphaned_digests(session, settle)
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
    await jobs.refresh_queue_statistics(database, len(rows) + len(digests))
    return len(rows) + len(digests)


@jobs.blueprint.periodic(cron="* * * * *", periodic_id="summary-tick")
@jobs.blueprint.task(name="summary_tick", queue="summaries", pass_context=True)
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
