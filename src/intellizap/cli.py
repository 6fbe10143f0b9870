"""The ``intellizap`` command: run the service, its parts, and operator tasks."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
import uvicorn

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
    _run_http(_settings(), Roles(migrate=True), host, port)


@cli.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Only the HTTP API (for replicas behind a load balancer; run `intellizap migrate` first)."""
    _run_http(_settings(), Roles(), host, port)


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at the same time.")] = 4,
) -> None:
    """Only the job worker and periodic tasks (run as many as you like, on any machine)."""
    settings = _settings()
    url, _embedded = start_database(settings)
    from intellizap import jobs

    async def run() -> None:
        async with jobs.connect(url).open_async() as app:
            await app.run_worker_async(concurrency=concurrency, fetch_job_polling_interval=2.0)

    asyncio.run(run())


@cli.command()
def migrate() -> None:
    """Apply the database migrations (ours and the job queue's). Safe to run on every deploy."""
    settings = _settings()
    url, _embedded = start_database(settings)
    migrations.upgrade(url)
    typer.echo(f"database at revision {migrations.current_revision(url)}")


def main() -> None:
    try:
        cli()
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(2)
