"""Job queue: procrastinate's schema, installed with ours.

Later procrastinate upgrades that change its schema get their own revision here, executing the
matching files of ``procrastinate/sql/migrations`` (see docs/operations.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    installed = bind.exec_driver_sql(
        "SELECT to_regclass('procrastinate_jobs') IS NOT NULL"
    ).scalar()
    if not installed:
        bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
    # Supabase exposes the public schema through its REST API; the queue is the backend's alone.
    bind.exec_driver_sql(
        """
        DO $$
        DECLARE t text;
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
                FOR t IN SELECT tablename FROM pg_tables
                         WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%%'
                LOOP
                    EXECUTE format('ALTER TABLE %%I ENABLE ROW LEVEL SECURITY', t);
                END LOOP;
            END IF;
        END $$;
        """
    )


def downgrade() -> None:
    raise RuntimeError("the job queue schema is not dropped by a downgrade")
