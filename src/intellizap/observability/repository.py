"""The observability package's queries: the job wrapper's context lookup and the queue gauges.

Both run on connections of their own (procrastinate's connector, the metrics collector's psycopg
connection), not on SQLAlchemy sessions, so the statements are plain SQL strings.
"""

from __future__ import annotations

from typing import Any, LiteralString

import procrastinate
import psycopg

# One round trip: when the job became ready, and whose it is — from whichever id its arguments
# carry (a summary, a message, a send of the ledger, or a tenant and the group JID it sends to).
# Absent ids are NULL.
_JOB_CONTEXT: LiteralString = """
    SELECT
        (SELECT max(at) FROM procrastinate_events
         WHERE job_id = %(job_id)s AND type IN ('deferred', 'deferred_for_retry', 'retried'))
            AS queued_at,
        CAST(u.id AS text) AS usuario_id, u.instancia,
        CAST(COALESCE(r.grupo_id, m.grupo_id, tg.id) AS text) AS grupo_id
    FROM (SELECT 1) AS one
    LEFT JOIN resumos r ON r.id = %(summary_id)s
    LEFT JOIN mensagens m ON m.id = %(message_id)s
    LEFT JOIN grupos g ON g.id = m.grupo_id
    LEFT JOIN envios e ON e.id = %(send_id)s
    LEFT JOIN usuarios t ON t.id = COALESCE(%(tenant_id)s, e.usuario_id)
    LEFT JOIN grupos tg
        ON tg.usuario_id = t.id AND tg.grupo_id_externo = COALESCE(%(number)s, e.destino_jid)
    LEFT JOIN usuarios u ON u.id = COALESCE(r.usuario_id, g.usuario_id, t.id)
"""


async def job_context(app: procrastinate.App, params: dict[str, Any]) -> dict[str, Any]:
    """When the job became ready and whose it is (``usuario_id``, ``instancia``, ``grupo_id``);
    ``params`` holds the ids its arguments carry."""
    row: dict[str, Any] = await app.connector.execute_query_one_async(_JOB_CONTEXT, **params)
    return row


# Grouped by the enum itself (cheaper than by its text), scheduled jobs counted apart.
_ACTIVE: LiteralString = """
    SELECT queue_name, CAST(status AS text), jobs, later FROM (
        SELECT queue_name, status, count(*) AS jobs, count(scheduled_at > now() OR NULL) AS later
        FROM procrastinate_jobs WHERE status IN ('todo', 'doing')
        GROUP BY queue_name, status
    ) AS active
"""
# The first ready jobs in the order workers take them (procrastinate's partial index on
# (priority DESC, id) WHERE status = 'todo'); their wait started when they were queued, or when
# they became due.
_OLDEST_READY: LiteralString = """
    SELECT EXTRACT(EPOCH FROM now() - min(GREATEST(j.scheduled_at, e.at)))
    FROM (
        SELECT id, scheduled_at FROM procrastinate_jobs
        WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
        ORDER BY priority DESC, id
        LIMIT 100
    ) AS j
    CROSS JOIN LATERAL (
        SELECT max(at) AS at FROM procrastinate_events
        WHERE job_id = j.id AND type IN ('deferred', 'deferred_for_retry', 'retried')
    ) AS e
"""
_FINISHED_ESTIMATE: LiteralString = """
    SELECT CAST(CAST(s.most_common_vals AS text) AS text[]), s.most_common_freqs, c.reltuples
    FROM pg_stats s
    JOIN pg_class c ON c.oid = to_regclass('procrastinate_jobs')
    WHERE s.schemaname = current_schema() AND s.tablename = 'procrastinate_jobs'
      AND s.attname = 'status'
"""
_WORKERS: LiteralString = """
    SELECT count(*) FROM procrastinate_workers
    WHERE last_heartbeat > now() - make_interval(secs => %(window)s)
"""


def active_jobs(cursor: psycopg.Cursor[Any]) -> list[tuple[str, str, int, int]]:
    """(queue, status, jobs, scheduled for later) of the waiting and running jobs."""
    return [
        (queue, status, int(jobs), int(later))
        for queue, status, jobs, later in cursor.execute(_ACTIVE)
    ]


def oldest_ready_seconds(cursor: psycopg.Cursor[Any]) -> float:
    """How long the longest-waiting due job has waited (0 when none waits)."""
    row = cursor.execute(_OLDEST_READY).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def job_status_statistics(
    cursor: psycopg.Cursor[Any],
) -> tuple[list[str], list[float], float] | None:
    """The planner's most common job statuses, their frequencies and the table's row estimate."""
    row = cursor.execute(_FINISHED_ESTIMATE).fetchone()
    if row is None or row[0] is None:
        return None
    values, frequencies, tuples = row
    return values, frequencies, float(tuples)


def live_workers(cursor: psycopg.Cursor[Any], window: float) -> int:
    """Workers whose heartbeat is more recent than ``window`` seconds."""
    row = cursor.execute(_WORKERS, {"window": window}).fetchone()
    return int(row[0]) if row else 0
