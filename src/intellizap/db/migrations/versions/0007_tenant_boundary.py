"""Tenant boundary: what a signed-in customer may read and write, by operation and column.

Everywhere: a summary (``resumos``) can only name a group of its own account — a composite
foreign key to ``grupos (id, usuario_id)``, checked for every new or changed row, whoever writes it
(rows written before this migration are reported, not deleted).

Where an ``auth`` schema exists (Supabase), for the frontend's users (role ``authenticated``,
``auth.uid()`` = ``usuarios.auth_id``; ``anon`` gets nothing) — the matrix of docs/security.md:

- ``usuarios``: read their own rows; update only their preferences (``"horaResumo"``,
  ``fuso_horario``, ``transcricao_ativa``, ``"key-openai"``, ``resumo_membros``). Plan and identity
  (``tokens_mes``, ``max_grupos``, ``"dia-renovacao-tokens"``, ``instancia``, ``evolution_token``,
  ``auth_id``) are the platform's. No insert, no delete: accounts are provisioned by the platform.
- ``grupos``: read their own; update only the flags and label (``ativo``, ``resumo_ativo``,
  ``transcricao_ativa``, ``nome``). Groups come from WhatsApp (the backend records them; the
  frontend asks ``POST /api/grupos/sincronizar``), so no insert and no delete.
- ``mensagens``, ``resumos``, ``uso_tokens``: read their own, write nothing (summaries are asked
  for through ``POST /api/grupos/{id}/resumos``).
- every other table (pending edits and audios, our own sends, the job queue, ``alembic_version``):
  nothing (:mod:`intellizap.db.migrations.row_security`).

Privileges are revoked and granted per column (Supabase grants ``ALL`` by default) and every
command has its own policy; a trigger also refuses a user's change to a platform column, so a
later blanket ``GRANT ALL`` (a common "fix" in Supabase guides) does not reopen the plan.
The backend connects as the tables' owner and is not affected. Idempotent; additive.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import logging
from collections.abc import Sequence

from alembic import op

from intellizap.db.migrations.row_security import (
    lock_down_internal_functions,
    lock_down_internal_table,
)

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("intellizap.db.migrations")

INTERNAL_TABLES = (
    "alteracoes_pendentes",
    "audios_pendentes",
    "mensagens_enviadas",
    "alembic_version",
)
CUSTOMER_TABLES = ("usuarios", "grupos", "mensagens", "resumos", "uso_tokens")

# A legacy row pointing at another account's group is kept (nothing is ever deleted) but reported;
# the backend only loads summaries whose group belongs to their account.
SUMMARY_BELONGS_TO_ITS_GROUP = """
CREATE UNIQUE INDEX IF NOT EXISTS grupos_id_usuario_id_key ON grupos (id, usuario_id);
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'resumos_grupo_da_conta_fkey' AND conrelid = 'resumos'::regclass
    ) THEN
        ALTER TABLE resumos ADD CONSTRAINT resumos_grupo_da_conta_fkey
            FOREIGN KEY (grupo_id, usuario_id) REFERENCES grupos (id, usuario_id)
            ON DELETE CASCADE NOT VALID;
    END IF;
    BEGIN
        ALTER TABLE resumos VALIDATE CONSTRAINT resumos_grupo_da_conta_fkey;
    EXCEPTION WHEN foreign_key_violation THEN
        NULL;  -- rows written before this migration: counted and reported below
    END;
END $$;
"""
INCONSISTENT_SUMMARIES = """
SELECT count(*) FROM resumos r
WHERE r.grupo_id IS NOT NULL AND r.usuario_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM grupos g WHERE g.id = r.grupo_id AND g.usuario_id = r.usuario_id)
"""

# Refuses an API user's change to the listed columns even if someone later grants the whole
# table. The WHEN clause keeps the backend (the owner) from even calling the function.
PLATFORM_COLUMNS_GUARD = """
CREATE OR REPLACE FUNCTION intellizap_colunas_da_plataforma() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    column_name text;
    before_row jsonb := to_jsonb(OLD);
    after_row jsonb := to_jsonb(NEW);
BEGIN
    FOREACH column_name IN ARRAY TG_ARGV LOOP
        IF before_row -> column_name IS DISTINCT FROM after_row -> column_name THEN
            RAISE EXCEPTION 'permission denied: %.% is set by the platform, not by its users',
                TG_TABLE_NAME, column_name
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS intellizap_colunas_da_plataforma ON usuarios;
CREATE TRIGGER intellizap_colunas_da_plataforma
    BEFORE UPDATE ON usuarios FOR EACH ROW
    WHEN (current_user IN ('anon', 'authenticated'))
    EXECUTE FUNCTION intellizap_colunas_da_plataforma(
        'id', 'auth_id', 'instancia', 'evolution_token', 'tokens_mes', 'max_grupos',
        'dia-renovacao-tokens', 'created_at');
DROP TRIGGER IF EXISTS intellizap_colunas_da_plataforma ON grupos;
CREATE TRIGGER intellizap_colunas_da_plataforma
    BEFORE UPDATE ON grupos FOR EACH ROW
    WHEN (current_user IN ('anon', 'authenticated'))
    EXECUTE FUNCTION intellizap_colunas_da_plataforma(
        'id', 'grupo_id_externo', 'usuario_id', 'created_at');
"""

# (SELECT auth.uid()) is evaluated once per statement, not once per row (Supabase's advice).
CUSTOMER_MATRIX = """
DO $$
DECLARE
    my_accounts text := 'SELECT id FROM usuarios WHERE auth_id = (SELECT auth.uid())';
    my_groups text := 'SELECT g.id FROM grupos g JOIN usuarios u ON u.id = g.usuario_id '
                      'WHERE u.auth_id = (SELECT auth.uid())';
    my_groups_with_account text := 'SELECT g.id, g.usuario_id FROM grupos g '
                                   'JOIN usuarios u ON u.id = g.usuario_id '
                                   'WHERE u.auth_id = (SELECT auth.uid())';
    rule record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
        RETURN;
    END IF;
    FOR rule IN
        SELECT * FROM (VALUES
            ('usuarios', 'auth_id = (SELECT auth.uid())',
             '"horaResumo", fuso_horario, transcricao_ativa, "key-openai", resumo_membros'),
            ('grupos', format('usuario_id IN (%s)', my_accounts),
             'ativo, resumo_ativo, transcricao_ativa, nome'),
            ('mensagens', format('grupo_id IN (%s)', my_groups), NULL),
            ('resumos', format('(grupo_id, usuario_id) IN (%s)', my_groups_with_account), NULL),
            ('uso_tokens', format('usuario_id IN (%s)', my_accounts), NULL)
        ) AS r (tbl, own_rows, writable_columns)
    LOOP
        -- The FOR ALL policy of migration 0001 let users insert, change and delete anything in
        -- their rows; replaced by one policy per command.
        EXECUTE format('DROP POLICY IF EXISTS intellizap_owner ON %I', rule.tbl);
        EXECUTE format('DROP POLICY IF EXISTS intellizap_select ON %I', rule.tbl);
        EXECUTE format('DROP POLICY IF EXISTS intellizap_update ON %I', rule.tbl);
        EXECUTE format(
            'CREATE POLICY intellizap_select ON %I FOR SELECT USING (%s)', rule.tbl, rule.own_rows
        );
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
            EXECUTE format('GRANT SELECT ON TABLE %I TO authenticated', rule.tbl);
        END IF;
        IF rule.writable_columns IS NOT NULL THEN
            EXECUTE format(
                'CREATE POLICY intellizap_update ON %I FOR UPDATE USING (%s) WITH CHECK (%s)',
                rule.tbl, rule.own_rows, rule.own_rows
            );
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
                EXECUTE format(
                    'GRANT UPDATE (%s) ON TABLE %I TO authenticated',
                    rule.writable_columns, rule.tbl
                );
            END IF;
        END IF;
    END LOOP;
END $$;
"""


def upgrade() -> None:
    op.execute(SUMMARY_BELONGS_TO_ITS_GROUP)
    bind = op.get_bind()
    inconsistent = bind.exec_driver_sql(INCONSISTENT_SUMMARIES).scalar()
    if inconsistent:
        log.warning(
            "%s resumos rows name a group of another account (their usuario_id is not the "
            "group's): kept, but never summarised, sent or shown. Review them with: SELECT r.* "
            "FROM resumos r JOIN grupos g ON g.id = r.grupo_id "
            "WHERE g.usuario_id IS DISTINCT FROM r.usuario_id",
            inconsistent,
        )
    supabase = bind.exec_driver_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth')"
    ).scalar()
    if not supabase:
        return
    op.execute(PLATFORM_COLUMNS_GUARD)
    queue_tables = (
        bind.exec_driver_sql(
            "SELECT tablename FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%%'"
        )
        .scalars()
        .all()
    )
    # Customer tables start from nothing too: then exactly the matrix is granted back.
    for table in (*INTERNAL_TABLES, *queue_tables, *CUSTOMER_TABLES):
        lock_down_internal_table(table)
    op.execute(CUSTOMER_MATRIX)
    for prefix in ("procrastinate_", "intellizap_"):
        lock_down_internal_functions(prefix)


def downgrade() -> None:
    raise RuntimeError("the tenant boundary is not undone by a downgrade")
