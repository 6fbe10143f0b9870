"""Apply and inspect the schema migrations (ours and, from the jobs migration on, the queue's)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text

from intellizap.db.engine import Database, sqlalchemy_url


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("intellizap.db") / "migrations"))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``. Safe to run on every deploy."""
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration this code knows."""
    script = ScriptDirectory.from_config(alembic_config("postgresql://localhost/x"))
    head = script.get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every migration this code knows (a database at another one was migrated by a newer
    release)."""
    script = ScriptDirectory.from_config(alembic_config("postgresql://localhost/x"))
    return {revision.revision for revision in script.walk_revisions()}


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (None when never migrated)."""
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


_APPLIED_REVISION = text("SELECT version_num FROM alembic_version")


async def applied_revision(database: Database) -> str | None:
    """The revision the database is at, read through ``database``'s pool (the readiness probe).
    Raises as the query does: without an ``alembic_version`` table the database was never
    migrated."""
    async with database.engine.connect() as conn:
        revision: str | None = (await conn.execute(_APPLIED_REVISION)).scalar_one_or_none()
    return revision
