"""Summaries: the on-demand setting, the record of our own sends, scheduler indexes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE usuarios ADD COLUMN IF NOT EXISTS resumo_membros boolean NOT NULL DEFAULT false;
        -- Messages the backend itself sent (summaries, transcripts): never summarised.
        CREATE TABLE IF NOT EXISTS mensagens_enviadas (
            id_externo varchar PRIMARY KEY,
            usuario_id uuid NOT NULL REFERENCES usuarios (id) ON DELETE CASCADE,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS grupos_resumo_ativo_idx
            ON grupos (usuario_id) WHERE resumo_ativo AND ativo;
        CREATE INDEX IF NOT EXISTS resumos_grupo_id_status_periodo_fim_idx
            ON resumos (grupo_id, status, periodo_fim);
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
                ALTER TABLE mensagens_enviadas ENABLE ROW LEVEL SECURITY;
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS mensagens_enviadas")
