"""An index for the sweep that re-queues summaries claimed but never queued.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only the few summaries still waiting to be written: the sweep reads this every minute.
    op.execute(
        """
        CREATE INDEX IF NOT EXISTS resumos_pendentes_sem_conteudo_idx
            ON resumos (created_at) WHERE status = 'pendente' AND conteudo IS NULL
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS resumos_pendentes_sem_conteudo_idx")
