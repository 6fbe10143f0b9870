"""The one async engine and session factory of the process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL cannot be reached right now; the caller should answer 503 and try again later."""


#: Errors that mean "the database is not reachable", as opposed to a bug or bad data.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OSError,
)


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says the database is unreachable."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, CONNECTION_ERRORS)


def sqlalchemy_url(url: str) -> str:
    """``postgresql://…`` (what Supabase and pgserver print) → the psycopg 3 dialect URL."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        scheme = "postgresql+psycopg"
    if scheme != "postgresql+psycopg":
        raise ValueError(
            "DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:5432/db)"
        )
    return urlunsplit(parts._replace(scheme=scheme))


def libpq_url(url: str) -> str:
    """The plain ``postgresql://`` form, for psycopg itself (the job queue)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def create_engine(url: str, *, pool_size: int, connect_timeout: float) -> AsyncEngine:
    """An engine that survives database restarts: the first query on a dead connection fails
    (the caller answers 503), SQLAlchemy then discards every pooled connection, and the next
    checkout connects anew. No ``pool_pre_ping``: it would add a round trip to every checkout."""
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout,
        pool_recycle=1800,
        # A failed statement's error message would otherwise carry its parameters: messages,
        # transcripts and summaries, then a log line.
        hide_parameters=True,
        connect_args={
            "connect_timeout": max(1, int(connect_timeout)),
            # Sessions in UTC: correct even on legacy `timestamp without time zone` columns.
            "options": "-c timezone=UTC",
        },
    )


class Database:
    """The engine plus the session factory; one per process."""

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, connect_timeout=connect_timeout)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success; connection errors become
        :class:`DatabaseUnavailable`."""
        try:
            async with self.sessions.begin() as session:
                yield session
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()
