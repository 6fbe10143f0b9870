"""The summary scheduler: every minute, claim the summaries that are due and queue them.

One statement does it for every tenant at once (no loop over tenants): it finds the groups with
``resumo_ativo`` whose ``"horaResumo"`` has passed in their tenant's time zone (today, or
yesterday for times near midnight) within the catch-up window, and inserts their ``resumos`` row.
The partial unique index on (``grupo_id``, ``data_referencia``) for ``origem = 'agendado'`` makes
the claim exactly-once, whatever the number of workers, retries or restarts. A day whose window
passed while the service was down is skipped and logged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import procrastinate
from sqlalchemy import text

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.logging import get_logger
from intellizap.settings import Settings

log = get_logger(__name__)

SUMMARIZE_TASK = "summarize"

_CLAIM = text(
    """
    WITH zones AS (SELECT name FROM pg_timezone_names),
    enabled AS (
        SELECT g.id AS group_id, g.usuario_id, g.created_at,
               u.max_grupos, u.fuso_horario, u."horaResumo" AS at_text,
               row_number() OVER (PARTITION BY g.usuario_id ORDER BY g.created_at, g.id) AS rank
        FROM grupos g JOIN usuarios u ON u.id = g.usuario_id
        WHERE g.ativo
    ),
    candidates AS (
        SELECT e.group_id, e.usuario_id, COALESCE(z.name, :default_zone) AS zone,
               CAST(substring(e.at_text FROM '^\\s*((?:[01]?[0-9]|2[0-3]):[0-5][0-9])') AS time)
                   AS at_time
        FROM enabled e
        JOIN grupos g ON g.id = e.group_id AND g.resumo_ativo
        LEFT JOIN zones z ON z.name = e.fuso_horario
        WHERE e.max_grupos IS NULL OR e.rank <= e.max_grupos
    ),
    due AS (
        SELECT c.group_id, c.usuario_id, d.day,
               (d.day + c.at_time) AT TIME ZONE c.zone AS scheduled_at
        FROM candidates c
        CROSS JOIN LATERAL (
            VALUES (CAST(CAST(:now AS timestamptz) AT TIME ZONE c.zone AS date)),
                   (CAST(CAST(:now AS timestamptz) AT TIME ZONE c.zone AS date) - 1)
        ) AS d (day)
        WHERE c.at_time IS NOT NULL
    ),
    claimed AS (
        INSERT INTO resumos (grupo_id, usuario_id, status, origem, data_referencia)
        SELECT group_id, usuario_id, 'pendente', 'agendado', day FROM due
        WHERE scheduled_at <= :now AND scheduled_at > CAST(:now AS timestamptz) - :grace
        ON CONFLICT (grupo_id, data_referencia) WHERE origem = 'agendado' DO NOTHING
        RETURNING id, grupo_id
    )
    SELECT 'claimed' AS outcome, id, grupo_id FROM claimed
    UNION ALL
    SELECT 'missed', NULL, due.group_id FROM due
    WHERE scheduled_at <= CAST(:now AS timestamptz) - :grace
      AND scheduled_at > CAST(:now AS timestamptz) - :grace - interval '1 minute'
      AND NOT EXISTS (
          SELECT 1 FROM resumos r
          WHERE r.grupo_id = due.group_id AND r.origem = 'agendado' AND r.data_referencia = due.day
      )
    """
)


@dataclass(frozen=True, slots=True)
class Claim:
    summary_id: uuid.UUID
    group_id: uuid.UUID


async def claim_due_summaries(database: Database, settings: Settings, now: datetime) -> list[Claim]:
    """Create the ``resumos`` rows of every summary due at ``now``; each at most once per day."""
    async with database.session() as session:
        rows = (
            await session.execute(
                _CLAIM,
                {
                    "now": now,
                    "grace": timedelta(hours=settings.summary_catchup_hours),
                    "default_zone": settings.default_timezone,
                },
            )
        ).all()
    for outcome, _, group_id in rows:
        if outcome == "missed":
            log.warning(
                "scheduled summary skipped: the catch-up window passed while the service was down",
                grupo_id=str(group_id),
            )
    return [
        Claim(summary_id, group_id)
        for outcome, summary_id, group_id in rows
        if outcome == "claimed"
    ]


async def queue_summary(
    queue: procrastinate.App, summary_id: uuid.UUID, group_id: uuid.UUID
) -> None:
    await jobs.defer(
        queue,
        SUMMARIZE_TASK,
        queueing_lock=f"summary:{summary_id}",
        lock=f"summary-group:{group_id}",
        args={"summary_id": str(summary_id)},
    )


@jobs.app.periodic(cron="* * * * *", periodic_id="summary-tick")
@jobs.app.task(name="summary_tick", queue="summaries", pass_context=True)
async def summary_tick(job_context: procrastinate.JobContext, timestamp: int) -> int:
    context = jobs.context_of(job_context)
    now = datetime.fromtimestamp(timestamp, UTC)
    claims = await claim_due_summaries(context.database, context.settings, now)
    for claim in claims:
        await queue_summary(job_context.app, claim.summary_id, claim.group_id)
    return len(claims)
