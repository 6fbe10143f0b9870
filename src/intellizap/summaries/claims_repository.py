"""The SQL of the tick's claims (see ``scheduled.py``): the daily summaries, weekly recaps and
owners' digests due at an instant, each claimed by inserting its row (``resumos``,
``resumos_dono``), exactly once however many ticks run at once: the partial unique indexes of
``resumos`` (``origem = 'agendado'`` per group and day, ``'semanal'`` per group and week) and the
unique key of ``resumos_dono`` (per account and day) settle concurrent claims.

Each claim computes every tenant's local "now" once per time zone, not per tenant, and reads the
groups only of the tenants due. The daily claim takes the tenants to examine
(:func:`due_summary_tenants` finds them): the tick claims a burst in parts, at once. Given a
deferrer (``jobs.deferrer``), a claim statement also queues its claims' jobs, made in SQL from
the rows it inserted (``job_repository``'s ``deferring_statement``): a 09:00 burst's rows never
travel to Python and back. The orphan sweeps stay with the rest of their rows' SQL
(``repository.py``, ``rollups_repository.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap import job_repository
from intellizap.db.engine import Database
from intellizap.summaries.repository import Rows


@dataclass(frozen=True, slots=True)
class DueWindow:
    """What a claim examines: the instant ``now`` and how far back (``window``); ``grace`` is the
    catch-up window (a claim's deadline after it was due; a summary past it is reported missed);
    ``zones`` are the time zones PostgreSQL knows (:func:`known_zones`), ``default_zone`` that of
    tenants without one."""

    now: datetime
    window: timedelta
    grace: timedelta
    zones: list[str]
    default_zone: str

    def params(self, **more: Any) -> dict[str, Any]:
        """The claim statements' parameters, and ``more``."""
        return {
            "now": self.now,
            "window": self.window,
            "grace": self.grace,
            "zones": self.zones,
            "default_zone": self.default_zone,
            **more,
        }


_ZONE_NOW = """
    zone_now AS (
        SELECT z.zone, CAST(:now AS timestamptz) AT TIME ZONE z.zone AS local_now
        FROM unnest(CAST(:zones AS text[])) AS z (zone)
    )
"""
_LOCAL_NOW = """
    COALESCE(zn.local_now, CAST(:now AS timestamptz) AT TIME ZONE :default_zone) AS local_now,
    COALESCE(zn.zone, :default_zone) AS zone
"""

# The day of the most recent local occurrence of ``at_time``: today's, or yesterday's when
# today's is still ahead (so 23:30 caught up at 00:45 belongs to the day before).
_LATEST_DAY = "CAST(local_now AS date) - CAST(CAST(local_now AS time) < at_time AS integer) AS day"


def iso_instant(instant: str) -> str:
    """SQL writing ``instant`` (a ``timestamptz`` expression) as Python's ``isoformat()`` writes
    it in UTC: ``2026-11-25T12:00:00+00:00``, microseconds only when there are some."""
    utc = f"({instant}) AT TIME ZONE 'UTC'"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {utc})"
        f" = {utc} THEN '' ELSE to_char({utc}, '.US') END || '+00:00'"
    )


def _jobs(claims: str, *, id_arg: str, queueing_lock: str, lock: str, locked_by: str) -> str:
    """The jobs of ``claims`` (columns ``id``, ``due_at`` and ``locked_by``) with the columns of
    ``job_repository.deferring_statement``: what ``scheduled.summary_job`` (``digest_job``)
    makes of each claim, its deadline ``:grace`` after it was due. The claim statement makes
    them itself, so that no row travels to Python and back."""
    return f"""
        SELECT jsonb_build_object('{id_arg}', CAST(c.id AS text),
                                  'deadline', {iso_instant("c.due_at + :grace")}) AS args,
               '{lock}:' || CAST(c.{locked_by} AS text) AS lock,
               '{queueing_lock}:' || CAST(c.id AS text) AS queueing_lock, 0 AS priority,
               CAST(NULL AS timestamptz) AS scheduled_at
        FROM {claims} AS c
    """  # noqa: S608 - the f-string only inserts constant SQL


def _summary_jobs(claims: str) -> str:
    return _jobs(
        claims,
        id_arg="summary_id",
        queueing_lock="summary",
        lock="summary-group",
        locked_by="grupo_id",
    )


# Local wall-clock "now" is computed once per time zone (a few hundred rows), not per tenant; each
# tenant is then a hash-join probe and a comparison on columns a trigger keeps parsed (migration
# 0005), and groups are read only for due tenants, by index. Tenants with no or an unknown zone
# use DEFAULT_TIMEZONE. (Wall-clock comparison: on a daylight
# saving change a summary inside the shifted hour may move by that hour, once.) ``tenants`` is
# an extra condition on ``usuarios u``.
def _due_tenants(tenants: str = "") -> str:
    return f"""
    {_ZONE_NOW},
    tenants AS (
        SELECT u.id, u.max_grupos, u.hora_resumo_local AS at_time, {_LOCAL_NOW}
        FROM usuarios u
        LEFT JOIN zone_now zn ON zn.zone = u.fuso_efetivo
        WHERE u.hora_resumo_local IS NOT NULL {tenants}
    ),
    -- The most recent local occurrence of each tenant's hour: today's, or yesterday's when
    -- today's is still ahead (so 23:30 caught up at 00:45 belongs to the day before).
    latest AS (
        SELECT id AS tenant_id, max_grupos, local_now, zone,
               {_LATEST_DAY},
               at_time
        FROM tenants
    ),
    -- MATERIALIZED: filter the (few) due tenants first, then look up their groups by index.
    due AS MATERIALIZED (
        SELECT tenant_id, max_grupos, day, day + at_time AS at_local, local_now, zone FROM latest
        WHERE day + at_time > local_now - :window
           OR (day + at_time <= local_now - :grace
               AND day + at_time > local_now - :grace - interval '1 minute')
    )
    """  # noqa: S608 - the f-string only inserts constant SQL fragments


# The tenants due, in a stable order: the tick claims their summaries in parts
# (``:tenant_ids``), at once.
_DUE_TENANTS = text(f"WITH {_due_tenants()} SELECT tenant_id FROM due ORDER BY tenant_id")  # noqa: S608
_CLAIM_CTES = f"""
    {_due_tenants("AND u.id = ANY(CAST(:tenant_ids AS uuid[]))")},
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
    -- The due groups not claimed yet (most of a catch-up tick's window is): an index probe each,
    -- much cheaper than an insert that conflicts; ON CONFLICT below still settles concurrent
    -- claims. All read before the insert writes anything (the sort consumes every row first):
    -- probing resumos row by row from inside the insert re-reads the pages it is filling, which
    -- made a burst quadratic whenever the planner preferred a scan to the index.
    unclaimed AS MATERIALIZED (
        SELECT d.* FROM due_groups d
        WHERE NOT EXISTS (
            SELECT 1 FROM resumos r
            WHERE r.grupo_id = d.group_id AND r.origem = 'agendado' AND r.data_referencia = d.day
        )
        ORDER BY d.group_id
    ),
    claimed AS (
        INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia)
        SELECT group_id, tenant_id, 'pendente', 'agendado', day FROM unclaimed
        WHERE at_local > local_now - :window
        ON CONFLICT (grupo_id, data_referencia) WHERE origem = 'agendado' DO NOTHING
        RETURNING id, grupo_id
    ),
    outcome AS (
        SELECT 'claimed' AS outcome, c.id, c.grupo_id, d.at_local AT TIME ZONE d.zone AS due_at
        FROM claimed c JOIN due_groups d ON d.group_id = c.grupo_id
        UNION ALL
        SELECT 'missed', NULL, d.group_id, NULL FROM unclaimed d
        WHERE d.at_local <= d.local_now - :grace
    ),
    outcome_jobs AS ({_summary_jobs("(SELECT * FROM outcome WHERE outcome = 'claimed')")})
"""  # noqa: S608 - the f-string only inserts constant SQL fragments
_CLAIM = text(f"WITH {_CLAIM_CTES} SELECT * FROM outcome")  # noqa: S608 - constant SQL
_CLAIM_AND_QUEUE = job_repository.deferring_statement(
    _CLAIM_CTES, jobs="outcome_jobs", result="outcome"
)

# Few groups ask for a recap: start from them (``asked``), then rank each of their tenants'
# active groups exactly as the daily claim does, so ``max_grupos`` means the same groups. The
# recap's hour is the group's own, else the account's; its day is the latest local occurrence
# of that hour (yesterday's when today's is still ahead), and it must be the chosen weekday.
_RECAP_CTES = f"""
    {_ZONE_NOW},
    asked AS MATERIALIZED (
        SELECT DISTINCT usuario_id FROM grupos
        WHERE resumo_semanal_dia IS NOT NULL AND resumo_ativo AND ativo
    ),
    tenants AS (
        SELECT u.id, u.max_grupos, u.hora_resumo_local AS account_time, {_LOCAL_NOW}
        FROM asked a JOIN usuarios u ON u.id = a.usuario_id
        LEFT JOIN zone_now zn ON zn.zone = u.fuso_efetivo
    ),
    ranked AS (
        SELECT g.id AS group_id, t.id AS tenant_id, t.local_now, t.zone,
               g.resumo_semanal_dia AS weekday,
               COALESCE(g.resumo_semanal_hora, t.account_time) AS at_time
        FROM tenants t
        CROSS JOIN LATERAL (
            SELECT id, resumo_ativo, resumo_semanal_dia, resumo_semanal_hora,
                   row_number() OVER (ORDER BY created_at, id) AS rank
            FROM grupos WHERE usuario_id = t.id AND ativo
        ) AS g
        WHERE g.resumo_ativo AND g.resumo_semanal_dia IS NOT NULL
          AND (t.max_grupos IS NULL OR g.rank <= t.max_grupos)
    ),
    latest AS (
        SELECT group_id, tenant_id, local_now, zone, weekday, at_time,
               {_LATEST_DAY}
        FROM ranked WHERE at_time IS NOT NULL
    ),
    -- Due and not claimed yet, all read before the insert writes anything (the sort consumes
    -- every row first): probed from inside the insert, resumos would be re-read as it fills.
    due AS MATERIALIZED (
        SELECT group_id, tenant_id, day, day + at_time AS at_local, zone FROM latest l
        WHERE EXTRACT(ISODOW FROM day) = weekday AND day + at_time > local_now - :window
          AND NOT EXISTS (
              SELECT 1 FROM resumos r
              WHERE r.grupo_id = l.group_id AND r.origem = 'semanal' AND r.data_referencia = l.day
          )
        ORDER BY group_id
    ),
    claimed AS (
        INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia)
        SELECT group_id, tenant_id, 'pendente', 'semanal', day FROM due
        ON CONFLICT (grupo_id, data_referencia) WHERE origem = 'semanal' DO NOTHING
        RETURNING id, grupo_id
    ),
    recaps AS (
        SELECT c.id, c.grupo_id, d.at_local AT TIME ZONE d.zone AS due_at
        FROM claimed c JOIN due d ON d.group_id = c.grupo_id
    ),
    recap_jobs AS ({_summary_jobs("recaps")})
"""  # noqa: S608 - the f-string only inserts constant SQL fragments
_RECAP_CLAIM = text(f"WITH {_RECAP_CTES} SELECT * FROM recaps")  # noqa: S608 - constant SQL
_RECAP_CLAIM_AND_QUEUE = job_repository.deferring_statement(
    _RECAP_CTES, jobs="recap_jobs", result="recaps"
)

# The day's scheduled summaries of the account, through each group's partial unique index.
_DAY_SUMMARIES_OF = """
    SELECT 1 FROM grupos g JOIN resumos r
        ON r.grupo_id = g.id AND r.origem = 'agendado' AND r.data_referencia = l.day
    WHERE g.usuario_id = l.tenant_id
"""

_DIGEST_JOBS = _jobs(
    "digests",
    id_arg="digest_id",
    queueing_lock="digest",
    lock="digest-account",
    locked_by="usuario_id",
)

# An account's digest is due after its hour once the daily claim made that day's summaries and
# none is still being written, or ``:wait`` after the hour whatever they are doing (a stuck group
# does not hold the others back), within the catch-up window.
_DIGEST_CTES = f"""
    {_ZONE_NOW},
    tenants AS (
        SELECT u.id AS tenant_id, u.hora_resumo_local AS at_time, {_LOCAL_NOW}
        FROM usuarios u LEFT JOIN zone_now zn ON zn.zone = u.fuso_efetivo
        WHERE u.resumo_diario_dono AND u.hora_resumo_local IS NOT NULL
    ),
    latest AS (
        SELECT tenant_id, at_time, local_now, zone,
               {_LATEST_DAY}
        FROM tenants
    ),
    -- Read whole before the insert below (the sort consumes every row first), like the
    -- recap's: probed from inside the insert, resumos_dono would be re-read as it fills.
    due AS MATERIALIZED (
        SELECT tenant_id, day, day + at_time AS at_local, zone FROM latest l
        WHERE day + at_time > local_now - :window
          AND NOT EXISTS (
              SELECT 1 FROM resumos_dono d
              WHERE d.usuario_id = l.tenant_id AND d.data_referencia = l.day
          )
          AND (day + at_time <= local_now - :wait
               OR (EXISTS ({_DAY_SUMMARIES_OF})
                   AND NOT EXISTS ({_DAY_SUMMARIES_OF} AND r.status = 'pendente')))
        ORDER BY tenant_id
    ),
    claimed AS (
        INSERT INTO resumos_dono (usuario_id, data_referencia)
        SELECT tenant_id, day FROM due
        ON CONFLICT (usuario_id, data_referencia) DO NOTHING
        RETURNING id, usuario_id
    ),
    digests AS (
        SELECT c.id, c.usuario_id, d.at_local AT TIME ZONE d.zone AS due_at
        FROM claimed c JOIN due d ON d.tenant_id = c.usuario_id
    ),
    digest_jobs AS ({_DIGEST_JOBS})
"""  # noqa: S608 - the f-string only inserts constant SQL fragments
_DIGEST_CLAIM = text(f"WITH {_DIGEST_CTES} SELECT * FROM digests")  # noqa: S608 - constant SQL
_DIGEST_CLAIM_AND_QUEUE = job_repository.deferring_statement(
    _DIGEST_CTES, jobs="digest_jobs", result="digests"
)

_KNOWN_ZONES = text("SELECT array_agg(name) FROM pg_timezone_names")
_zones: list[str] = []  # known_zones' cache


async def known_zones(database: Database) -> list[str]:
    """The time zones this PostgreSQL knows (read once per process: it never changes)."""
    if not _zones:
        async with database.engine.connect() as conn:
            known = (await conn.execute(_KNOWN_ZONES)).scalar_one()
        # Assigned whole after the await: two first callers at once must not both append.
        _zones[:] = sorted(set(known))
    return _zones


async def _claim(
    session: AsyncSession,
    claim: TextClause,
    claim_and_queue: TextClause,
    params: dict[str, Any],
    defer: job_repository.Deferrer | None,
) -> Rows:
    """Run a claim: alone, or with ``defer`` its variant that also queues the claims' jobs."""
    if defer is None:
        return (await session.execute(claim, params)).all()
    return await defer(session, claim_and_queue, params)


async def due_summary_tenants(session: AsyncSession, due: DueWindow) -> list[uuid.UUID]:
    """The tenants whose daily summaries are due within ``due``, or whose catch-up window just
    passed: what :func:`claim_due_summary_rows` examines."""
    return list((await session.execute(_DUE_TENANTS, due.params())).scalars())


async def claim_due_summary_rows(
    session: AsyncSession,
    due: DueWindow,
    tenant_ids: Sequence[uuid.UUID],
    defer: job_repository.Deferrer | None = None,
) -> Rows:
    """Insert the ``resumos`` row of every daily summary of ``tenant_ids`` due within ``due``
    (those :func:`due_summary_tenants` found, or some of them); one row (outcome, summary id,
    group id, due at) per claim (``'claimed'``) and per summary whose catch-up window passed
    unclaimed (``'missed'``, summary id and due at NULL). A tenant no longer due by then is
    skipped. With ``defer`` (``jobs.deferrer`` of the summary task) the same statement queues
    each claim's job."""
    params = due.params(tenant_ids=list(tenant_ids))
    return await _claim(session, _CLAIM, _CLAIM_AND_QUEUE, params, defer)


async def claim_due_recap_rows(
    session: AsyncSession, due: DueWindow, defer: job_repository.Deferrer | None = None
) -> Rows:
    """Insert the ``resumos`` row of every weekly recap due within ``due``: (summary id, group
    id, due at) per claim; with ``defer``, and its job (deadline ``grace`` after it was due)."""
    return await _claim(session, _RECAP_CLAIM, _RECAP_CLAIM_AND_QUEUE, due.params(), defer)


async def claim_due_digest_rows(
    session: AsyncSession,
    due: DueWindow,
    wait: timedelta,
    defer: job_repository.Deferrer | None = None,
) -> Rows:
    """Insert the ``resumos_dono`` row of every owner's digest due within ``due`` (``wait``: how
    long one waits for the day's summaries): (digest id, tenant id, due at); with ``defer``, and
    its job (deadline ``grace`` after it was due)."""
    params = due.params(wait=wait)
    return await _claim(session, _DIGEST_CLAIM, _DIGEST_CLAIM_AND_QUEUE, params, defer)
