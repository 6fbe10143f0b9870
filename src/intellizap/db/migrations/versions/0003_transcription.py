"""Transcription: a reason column for failed transcriptions and a short-lived audio hand-off.

``audios_pendentes`` carries a voice note from the webhook (Evolution's base64 option, or just
the media key for a later download) to the transcription job, which deletes the row when done:
no audio is kept after the job.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE mensagens ADD COLUMN IF NOT EXISTS transcricao_erro text;
        CREATE TABLE IF NOT EXISTS audios_pendentes (
            mensagem_id uuid PRIMARY KEY REFERENCES mensagens (id) ON DELETE CASCADE,
            midia jsonb NOT NULL,
            base64 text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
                ALTER TABLE audios_pendentes ENABLE ROW LEVEL SECURITY;
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS audios_pendentes")
