"""Scheduler columns maintained on write: the parsed summary hour and the validated time zone.

The frontend writes ``"horaResumo"`` (text, "HH:MM") and ``fuso_horario`` (text) directly. Parsing
and validating them for every tenant on every scheduler tick (each minute) would dominate its
cost, so a trigger does it once per write: ``hora_resumo_local`` is the hour as a ``time`` (NULL
when unparseable) and ``fuso_efetivo`` the zone when PostgreSQL knows it (NULL: use the default).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        r"""
        ALTER TABLE usuarios
            ADD COLUMN IF NOT EXISTS hora_resumo_local time,
            ADD COLUMN IF NOT EXISTS fuso_efetivo varchar;

        CREATE OR REPLACE FUNCTION intellizap_agenda_resumo() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE hour_text text;
        BEGIN
            hour_text := substring(NEW."horaResumo" FROM '^\s*((?:[01]?[0-9]|2[0-3]):[0-5][0-9])');
            NEW.hora_resumo_local := CAST(hour_text AS time);
            NEW.fuso_efetivo := NULL;
            IF NEW.fuso_horario IS NOT NULL THEN
                BEGIN
                    PERFORM now() AT TIME ZONE NEW.fuso_horario;
                    NEW.fuso_efetivo := NEW.fuso_horario;
                EXCEPTION WHEN OTHERS THEN
                    NEW.fuso_efetivo := NULL;
                END;
            END IF;
            RETURN NEW;
        END $$;

        DROP TRIGGER IF EXISTS intellizap_agenda_resumo ON usuarios;
        CREATE TRIGGER intellizap_agenda_resumo
            BEFORE INSERT OR UPDATE OF "horaResumo", fuso_horario ON usuarios
            FOR EACH ROW EXECUTE FUNCTION intellizap_agenda_resumo();

        UPDATE usuarios SET "horaResumo" = "horaResumo";
        CREATE INDEX IF NOT EXISTS usuarios_agenda_idx
            ON usuarios (fuso_efetivo, hora_resumo_local) WHERE hora_resumo_local IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS intellizap_agenda_resumo ON usuarios;
        DROP FUNCTION IF EXISTS intellizap_agenda_resumo();
        """
    )
