"""What every operator command needs: settings checked once, a database, a tenant by instance."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from intellizap.app import start_database
from intellizap.db.engine import Database
from intellizap.logging import configure_logging
from intellizap.settings import ConfigurationError, Settings, check_for_production, get_settings
from intellizap.tenants.repository import TenantAccount, TenantNotFound, tenant_by_instance

InstanceArgument = Annotated[str, typer.Argument(help="The tenant's Evolution instance.")]
InstanceOption = Annotated[
    str, typer.Option("--instancia", help="The tenant's Evolution instance.")
]


def load_settings() -> Settings:
    """The process settings, with logging configured; exits 2 on an unsafe production value."""
    settings = get_settings()
    configure_logging(
        json=settings.is_production, level=settings.log_level, secrets=settings.secret_values()
    )
    try:
        check_for_production(settings)
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    return settings


def with_database(settings: Settings, work: Callable[[Database, str], Awaitable[None]]) -> None:
    """Run an operator command's ``work(database, url)`` against the configured database."""
    url, _embedded = start_database(settings)

    async def run() -> None:
        database = Database(url, pool_size=2)
        try:
            await work(database, url)
        finally:
            await database.dispose()

    asyncio.run(run())


async def tenant_or_exit(database: Database, instance: str) -> TenantAccount:
    """The tenant of ``instance``, or exit 1 naming the unknown instance."""
    try:
        return await tenant_by_instance(database, instance)
    except TenantNotFound:
        typer.echo(f"no tenant has the instance {instance!r} (usuarios.instancia)", err=True)
        raise typer.Exit(1) from None
