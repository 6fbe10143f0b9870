"""The ``intellizap`` command: run the service, its parts, and operator tasks."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer
import uvicorn

from intellizap import jobs
from intellizap.app import Roles, create_app, start_database
from intellizap.db import migrate as migrations
from intellizap.logging import configure_logging, get_logger
from intellizap.settings import ConfigurationError, Settings, check_for_production, get_settings

cli = typer.Typer(
    name="intellizap",
    help="IntelliZap backend: WhatsApp group ingest, transcription and daily summaries.",
    no_args_is_help=True,
    add_completion=False,
)
log = get_logger(__name__)

PortOption = Annotated[int | None, typer.Option(help="Port to listen on (default: PORT or 8000).")]
HostOption = Annotated[str | None, typer.Option(help="Interface to bind (default: HOST).")]


def _settings() -> Settings:
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


def _run_http(settings: Settings, roles: Roles, host: str | None, port: int | None) -> None:
    uvicorn.run(
        create_app(settings, roles),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,  # our logging set-up (JSON in production, redacted) handles uvicorn's lines
        proxy_headers=True,
    )


@cli.command()
def serve(host: HostOption = None, port: PortOption = None) -> None:
    """All in one process: API, job worker and scheduler. Starts an embedded PostgreSQL under
    DATA_DIR when DATABASE_URL is unset, and applies migrations."""
    _run_http(_settings(), Roles(migrate=True, worker=True), host, port)


@cli.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Only the HTTP API (for replicas behind a load balancer; run `intellizap migrate` first)."""
    _run_http(_settings(), Roles(), host, port)


@cli.command()
def worker() -> None:
    """Only the job worker and periodic tasks (run as many as you like, on any machine).
    SIGTERM lets running jobs finish (up to 30 s); unfinished ones run again elsewhere."""
    settings = _settings()
    url, _embedded = start_database(settings)

    async def run() -> None:
        main = asyncio.current_task()
        assert main is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, main.cancel)
        async with jobs.connect(url).open_async() as queue:
            try:
                await jobs.run_worker(queue, settings, url)
            except asyncio.CancelledError:
                log.info("worker stopped")

    asyncio.run(run())


@cli.command()
def migrate() -> None:
    """Apply the database migrations (ours and the job queue's). Safe to run on every deploy."""
    settings = _settings()
    url, _embedded = start_database(settings)
    migrations.upgrade(url)
    typer.echo(f"database at revision {migrations.current_revision(url)}")


groups_cli = typer.Typer(help="WhatsApp groups of a tenant.", no_args_is_help=True)
cli.add_typer(groups_cli, name="grupos")


@groups_cli.command("sync")
def sync_groups(
    instance: Annotated[str, typer.Argument(help="The tenant's Evolution instance.")],
) -> None:
    """Fetch the instance's groups from Evolution and record them (names; new ones inactive)."""
    from rich.progress import Progress

    from intellizap.db.engine import Database
    from intellizap.evolution.client import EvolutionClient
    from intellizap.tenants.group_sync import store_groups
    from intellizap.tenants.repository import TenantNotFound, tenant_by_instance

    settings = _settings()
    url, _embedded = start_database(settings)

    async def run() -> None:
        database = Database(url, pool_size=2)
        evolution = EvolutionClient(
            settings.evolution_api_url,
            api_key=settings.evolution_api_key.get_secret_value()
            if settings.evolution_api_key
            else None,
            api_version=settings.evolution_api_version,
        )
        try:
            tenant = await tenant_by_instance(database, instance)
            with Progress(transient=True) as progress:
                fetching = progress.add_task(f"fetching groups of {instance}…", total=None)
                groups = await evolution.fetch_all_groups(
                    tenant.instance, token=tenant.evolution_token
                )
                progress.update(fetching, total=len(groups), description="recording groups")
                result = await store_groups(
                    database, tenant.id, groups, lambda n: progress.advance(fetching, n)
                )
            typer.echo(f"{result.groups} groups of {instance}, {result.new} new (inactive)")
        except TenantNotFound:
            typer.echo(f"no tenant has the instance {instance!r} (usuarios.instancia)", err=True)
            raise typer.Exit(1) from None
        finally:
            await evolution.aclose()
            await database.dispose()

    asyncio.run(run())


def main() -> None:
    try:
        cli()
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(2)
