"""One foreign key from a summary to its group, so the frontend can embed one in the other.

Migration 0007 added ``resumos_grupo_da_conta_fkey`` (``resumos (grupo_id, usuario_id) → grupos
(id, usuario_id)``: a summary names a group of its own account) beside the legacy single-column
key ``resumos (grupo_id) → grupos (id)``. Two foreign keys between the same two tables are two
relationships to PostgREST, which then refuses to choose: ``resumos?select=*,grupos(*)`` and
``grupos?select=*,resumos(*)`` answer ``300 PGRST201`` ("more than one relationship was found").

The composite key implies the single-column one (same column, same referenced key, same
``ON DELETE CASCADE``), so the single-column one is dropped whatever its name, and embedding
resolves through the composite key, to the same group. It is dropped only once the composite key
is validated: a database still holding rows written before 0007 that name another account's
group (reported by 0007) keeps both, and a warning says what to do. PostgREST is told to reload
its schema. One check fewer per new summary, too: the 09:00 tick inserts thousands at once.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import logging
from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("intellizap.db.migrations")

COMPOSITE_KEY = "resumos_grupo_da_conta_fkey"

# The single-column foreign keys of resumos (grupo_id) to grupos, by whatever name the database
# that created the legacy schema gave them.
SINGLE_COLUMN_KEYS = """
SELECT c.conname FROM pg_constraint c
WHERE c.contype = 'f' AND c.conrelid = 'resumos'::regclass AND c.confrelid = 'grupos'::regclass
  AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                        WHERE attrelid = 'resumos'::regclass AND attname = 'grupo_id')]
"""
COMPOSITE_VALIDATED = """
SELECT convalidated FROM pg_constraint
WHERE conname = 'resumos_grupo_da_conta_fkey' AND conrelid = 'resumos'::regclass
"""


def upgrade() -> None:
    bind = op.get_bind()
    single = bind.exec_driver_sql(SINGLE_COLUMN_KEYS).scalars().all()
    if not single:
        return
    if not bind.exec_driver_sql(COMPOSITE_VALIDATED).scalar():
        log.warning(
            "resumos keeps two foreign keys to grupos (%s and %s) while rows written before "
            "migration 0007 name a group of another account, so PostgREST cannot embed grupos "
            "in resumos (PGRST201) until they are resolved. Review them (see migration 0007's "
            "warning), then run: ALTER TABLE resumos VALIDATE CONSTRAINT %s; ALTER TABLE resumos "
            "DROP CONSTRAINT %s",
            ", ".join(single),
            COMPOSITE_KEY,
            COMPOSITE_KEY,
            ", DROP CONSTRAINT ".join(single),
        )
        return
    quote = bind.dialect.identifier_preparer.quote
    for name in single:
        op.execute(f"ALTER TABLE resumos DROP CONSTRAINT {quote(name)}")
    # PostgREST reads relationships once and caches them: tell it to read them again (Supabase
    # also does on any DDL; a self-hosted PostgREST listens on this channel by default).
    op.execute("NOTIFY pgrst, 'reload schema'")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE resumos ADD CONSTRAINT resumos_grupo_id_fkey FOREIGN KEY (grupo_id)"
        " REFERENCES grupos (id) ON DELETE CASCADE"
    )
