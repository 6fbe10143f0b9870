"""Token reservations, and an index that keeps the job queue fast with thousands of jobs waiting.

``reservas_tokens``: what running LLM calls may still spend of a tenant's monthly quota. A summary
reserves its estimated tokens under a per-tenant lock before calling the LLM and gives back what
it did not use afterwards, so summaries running at once cannot all pass the quota check together.
Internal to the backend: never readable by Supabase users.

``procrastinate_jobs (lock, id)`` for waiting and running jobs: procrastinate's fetch checks, for
the job it is about to take, that no earlier job with the same lock waits or runs. Its own index
on (id, lock) cannot find a lock, so after a 09:00 burst (10,000 summaries queued at once, before
autovacuum refreshed the table's statistics) every fetch scanned it once per waiting job: 300 ms
a fetch with 2,000 waiting, and workers starved for jobs (see procrastinate issue #393).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

from intellizap.db.migrations.row_security import lock_down_internal_table

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS reservas_tokens (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            usuario_id uuid NOT NULL REFERENCES usuarios (id) ON DELETE CASCADE,
            tokens integer NOT NULL CHECK (tokens >= 0),
            expira_em timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS reservas_tokens_usuario_id_idx
            ON reservas_tokens (usuario_id, expira_em);
        CREATE INDEX IF NOT EXISTS procrastinate_jobs_lock_id_waiting_idx
            ON procrastinate_jobs (lock, id) WHERE status IN ('todo', 'doing');
        """
    )
    lock_down_internal_table("reservas_tokens")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS procrastinate_jobs_lock_id_waiting_idx")
    op.execute("DROP TABLE IF EXISTS reservas_tokens")
