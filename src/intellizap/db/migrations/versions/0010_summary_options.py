"""Summary options: where a summary goes, its language, the customer's instructions, mentions,
the owner's daily digest and the weekly recap.

Every new column is nullable or has a default that keeps what existing rows did before (a
summary in pt-BR, posted in its group, mentioning nobody; no digest, no recap):

- ``grupos.resumo_destino``: ``grupo`` (default), ``dono`` (the owner's private chat) or
  ``ambos``; ``grupos.idioma`` (NULL: the account's, else detected from the chat);
  ``grupos.instrucoes_resumo`` (at most 500 characters); ``grupos.resumo_semanal_dia`` (ISO
  weekday 1 = Monday … 7 = Sunday; NULL: no weekly recap) and ``grupos.resumo_semanal_hora``
  (NULL: the account's ``"horaResumo"``).
- ``usuarios.idioma``, ``usuarios.mencoes_ativas`` (default false: a mention notifies people),
  ``usuarios.resumo_diario_dono`` (default false) and ``usuarios.numero_dono`` (the owner's own
  WhatsApp number, digits with country code: where private summaries and the digest go).
- ``resumos``: a weekly recap is a row with ``origem = 'semanal'``, at most one per group and
  week (``data_referencia`` = the recap's local day), like the daily one.
- ``resumos_dono``: the owner's daily digests, at most one per account and day.
- ``envios.mencoes``: the numbers a part of a message mentions (Evolution's ``mentioned``).

On Supabase the new preference columns are the customer's to update (their own rows, as the
other preferences of migration 0007); ``resumos_dono`` is readable by its owner only; nothing
else changes in the matrix of docs/security.md. Idempotent; additive.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from intellizap.db.migrations.row_security import lock_down_internal_table

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Preference columns a signed-in customer may update on their own rows.
CUSTOMER_COLUMNS = {
    "grupos": (
        "resumo_destino",
        "idioma",
        "instrucoes_resumo",
        "resumo_semanal_dia",
        "resumo_semanal_hora",
    ),
    "usuarios": ("idioma", "mencoes_ativas", "resumo_diario_dono", "numero_dono"),
}

COLUMNS = """
ALTER TABLE grupos
    ADD COLUMN IF NOT EXISTS resumo_destino varchar NOT NULL DEFAULT 'grupo',
    ADD COLUMN IF NOT EXISTS idioma varchar,
    ADD COLUMN IF NOT EXISTS instrucoes_resumo text,
    ADD COLUMN IF NOT EXISTS resumo_semanal_dia smallint,
    ADD COLUMN IF NOT EXISTS resumo_semanal_hora time;
ALTER TABLE usuarios
    ADD COLUMN IF NOT EXISTS idioma varchar,
    ADD COLUMN IF NOT EXISTS mencoes_ativas boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS resumo_diario_dono boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS numero_dono varchar;
ALTER TABLE envios ADD COLUMN IF NOT EXISTS mencoes text[];
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'grupos_resumo_destino_check') THEN
        ALTER TABLE grupos ADD CONSTRAINT grupos_resumo_destino_check
            CHECK (resumo_destino IN ('grupo', 'dono', 'ambos'));
        ALTER TABLE grupos ADD CONSTRAINT grupos_idioma_check
            CHECK (char_length(idioma) <= 16);
        ALTER TABLE grupos ADD CONSTRAINT grupos_instrucoes_resumo_check
            CHECK (char_length(instrucoes_resumo) <= 500);
        ALTER TABLE grupos ADD CONSTRAINT grupos_resumo_semanal_dia_check
            CHECK (resumo_semanal_dia BETWEEN 1 AND 7);
        ALTER TABLE usuarios ADD CONSTRAINT usuarios_idioma_check
            CHECK (char_length(idioma) <= 16);
        ALTER TABLE usuarios ADD CONSTRAINT usuarios_numero_dono_check
            CHECK (numero_dono ~ '^[0-9]{8,15}$');
    END IF;
END $$;
CREATE UNIQUE INDEX IF NOT EXISTS resumos_grupo_id_semana_key
    ON resumos (grupo_id, data_referencia) WHERE origem = 'semanal';
CREATE TABLE IF NOT EXISTS resumos_dono (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    usuario_id uuid NOT NULL REFERENCES usuarios (id) ON DELETE CASCADE,
    data_referencia date NOT NULL,
    status status_resumo NOT NULL DEFAULT 'pendente',
    conteudo text,
    total_grupos integer,
    tokens_usados integer,
    erro text,
    data_envio timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT resumos_dono_usuario_id_data_referencia_key UNIQUE (usuario_id, data_referencia)
);
"""

# Same shape as migration 0007's matrix: own rows by auth.uid(), one policy per command.
CUSTOMER_RULES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        RETURN;
    END IF;
    GRANT UPDATE ({grupos}) ON TABLE grupos TO authenticated;
    GRANT UPDATE ({usuarios}) ON TABLE usuarios TO authenticated;
    DROP POLICY IF EXISTS intellizap_select ON resumos_dono;
    CREATE POLICY intellizap_select ON resumos_dono FOR SELECT USING (
        usuario_id IN (SELECT id FROM usuarios WHERE auth_id = (SELECT auth.uid()))
    );
    GRANT SELECT ON TABLE resumos_dono TO authenticated;
END $$;
"""


def upgrade() -> None:
    op.execute(COLUMNS)
    supabase = (
        op.get_bind()
        .exec_driver_sql("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth')")
        .scalar()
    )
    if not supabase:
        return
    # Start from nothing (Supabase granted ALL on the new table), then grant the matrix's cells.
    lock_down_internal_table("resumos_dono")
    op.execute(
        CUSTOMER_RULES.format(
            grupos=", ".join(CUSTOMER_COLUMNS["grupos"]),
            usuarios=", ".join(CUSTOMER_COLUMNS["usuarios"]),
        )
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS resumos_dono;
        DROP INDEX IF EXISTS resumos_grupo_id_semana_key;
        ALTER TABLE envios DROP COLUMN IF EXISTS mencoes;
        ALTER TABLE usuarios DROP CONSTRAINT IF EXISTS usuarios_numero_dono_check,
            DROP CONSTRAINT IF EXISTS usuarios_idioma_check,
            DROP COLUMN IF EXISTS numero_dono, DROP COLUMN IF EXISTS resumo_diario_dono,
            DROP COLUMN IF EXISTS mencoes_ativas, DROP COLUMN IF EXISTS idioma;
        ALTER TABLE grupos DROP CONSTRAINT IF EXISTS grupos_resumo_semanal_dia_check,
            DROP CONSTRAINT IF EXISTS grupos_instrucoes_resumo_check,
            DROP CONSTRAINT IF EXISTS grupos_idioma_check,
            DROP CONSTRAINT IF EXISTS grupos_resumo_destino_check,
            DROP COLUMN IF EXISTS resumo_semanal_hora, DROP COLUMN IF EXISTS resumo_semanal_dia,
            DROP COLUMN IF EXISTS instrucoes_resumo, DROP COLUMN IF EXISTS idioma,
            DROP COLUMN IF EXISTS resumo_destino;
        """
    )
