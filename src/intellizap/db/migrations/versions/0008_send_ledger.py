"""The send ledger: every WhatsApp message the backend sends, recorded before it is posted.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

from intellizap.db.migrations.row_security import lock_down_internal_table

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS envios (
            id bigserial PRIMARY KEY,
            -- The caller's name for this message part: the same key is sent once.
            chave varchar NOT NULL UNIQUE,
            usuario_id uuid NOT NULL REFERENCES usuarios (id) ON DELETE CASCADE,
            -- The message this is a part of (its key without the part number), part i of n.
            lote varchar NOT NULL,
            parte integer NOT NULL,
            partes integer NOT NULL,
            numero varchar NOT NULL,
            destino_jid varchar NOT NULL,
            -- Cleared once the outcome is final: only the hash is kept to recognise the message.
            texto text,
            texto_hash varchar(64) NOT NULL,
            citacao jsonb,
            ao_concluir jsonb,
            status varchar NOT NULL DEFAULT 'pendente',
            tentativas integer NOT NULL DEFAULT 0,
            postado_em timestamptz,
            respondido_em timestamptz,
            concluido_em timestamptz,
            id_externo varchar,
            erro text,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT envios_status_check
                CHECK (status IN ('pendente', 'enviando', 'enviado', 'falhou', 'cancelado'))
        );
        -- One WhatsApp message confirms one ledger row.
        CREATE UNIQUE INDEX IF NOT EXISTS envios_usuario_id_id_externo_key
            ON envios (usuario_id, id_externo) WHERE id_externo IS NOT NULL;
        -- Pacing: the instance's latest POST.
        CREATE INDEX IF NOT EXISTS envios_usuario_id_postado_em_idx
            ON envios (usuario_id, postado_em DESC) WHERE postado_em IS NOT NULL;
        -- The send.message webhook looks for a send whose outcome is unknown (at most a few).
        CREATE INDEX IF NOT EXISTS envios_enviando_idx
            ON envios (usuario_id) WHERE status = 'enviando';
        CREATE INDEX IF NOT EXISTS envios_lote_parte_idx ON envios (lote, parte);
        CREATE INDEX IF NOT EXISTS envios_created_at_idx ON envios (created_at);
        """
    )
    # Texts on their way to the groups: the backend's alone (docs/security.md).
    lock_down_internal_table("envios")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS envios")
