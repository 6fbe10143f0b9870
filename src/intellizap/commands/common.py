"""What every operator command needs: settings checked once, a database, a tenant by instance."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer

from intellizap.commands.preflight import (
    PreflightError,
    check_connection,
    check_schema,
)
from intellizap.db.embedded import start_database
from intellizap.db.engine import Database, DatabaseUnavailable
from intellizap.logging import configure_logging
from intellizap.settings import ConfigurationError, Settings, check_for_production, get_settings
from intellizap.summaries.destinations import UnknownDestination
from intellizap.summaries.language import UnknownLanguage
from intellizap.summaries.prompt import InstructionsTooLong
from intellizap.tenants.plan import InvalidPlanValue
from intellizap.tenants.repository import TenantAccount, TenantNotFound, tenant_by_instance

InstanceArgument = Annotated[str, typer.Argument(help="The tenant's Evolution instance.")]
InstanceOption = Annotated[
    str, typer.Option("--instancia", help="The tenant's Evolution instance.")
]

T = TypeVar("T")

#: Exit statuses: 1 the request was refused (unknown instance, a full plan…), 2 the
#: configuration or the environment is wrong (a variable, an unreachable database).
REFUSED = 1
MISCONFIGURED = 2


def fail(message: str, code: int = REFUSED) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def load_settings(*, service: bool = False) -> Settings:
    """The process settings, with logging configured; exits 2 on an invalid variable or an
    unsafe production value, saying which.

    A ``service`` (serve, api, worker, migrate) logs to stdout at ``LOG_LEVEL``; an operator
    command prints its results on stdout, so its log lines go to stderr, warnings and up only
    (everything with ``LOG_LEVEL=DEBUG``, to debug a command).
    """
    try:
        settings = get_settings()
    except ConfigurationError as exc:
        fail(str(exc), MISCONFIGURED)
    level = settings.log_level
    if not service and level != "DEBUG" and logging.getLevelName(level) < logging.WARNING:
        level = "WARNING"
    configure_logging(
        json=settings.is_production,
        level=level,
        secrets=settings.secret_values(),
        stream=None if service else sys.stderr,
    )
    try:
        check_for_production(settings)
    except ConfigurationError as exc:
        fail(str(exc), MISCONFIGURED)
    return settings


def database_url(settings: Settings, *, schema: bool = True) -> str:
    """The database to use, checked: reachable with these credentials and (``schema``) with
    this version's migrations applied. Starts the embedded server when DATABASE_URL is unset."""
    try:
        url, _embedded = start_database(settings)
    except Exception as exc:  # pgserver reports every start-up failure its own way
        fail(
            f"the embedded database under DATA_DIR={settings.data_dir} did not start: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}\n"
            "Check that DATA_DIR is writable, or set DATABASE_URL to use your own PostgreSQL.",
            MISCONFIGURED,
        )
    try:
        check_connection(url, timeout=settings.database_connect_timeout)
        if schema:
            check_schema(url, settings)
    except PreflightError as exc:
        fail(str(exc), MISCONFIGURED)
    return url


def with_database(settings: Settings, work: Callable[[Database, str], Awaitable[None]]) -> None:
    """Run an operator command's ``work(database, url)`` against the configured database."""
    url = database_url(settings)

    async def run() -> None:
        database = Database(url, pool_size=2, connect_timeout=settings.database_connect_timeout)
        try:
            await work(database, url)
        finally:
            await database.dispose()

    try:
        asyncio.run(run())
    except DatabaseUnavailable as exc:
        fail(f"the database stopped answering: {exc}".splitlines()[0], MISCONFIGURED)


async def tenant_or_exit(database: Database, instance: str) -> TenantAccount:
    """The tenant of ``instance``, or exit 1 naming the unknown instance."""
    try:
        return await tenant_by_instance(database, instance)
    except TenantNotFound:
        fail(
            f"no tenant has the instance {instance!r} (usuarios.instancia); "
            "`intellizap usuarios list` shows them, `intellizap usuarios add` creates one"
        )


#: What the checkers raise for a value the operator typed; the message says what to type.
INVALID_VALUE = (InvalidPlanValue, UnknownDestination, UnknownLanguage, InstructionsTooLong)


def checked(parse: Callable[..., T], *args: object) -> T:
    """``parse(*args)``, exiting 1 with its message when the operator's value is invalid."""
    try:
        return parse(*args)
    except INVALID_VALUE as exc:
        fail(str(exc))
