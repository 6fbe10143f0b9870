"""The ``intellizap`` command: run the service, its parts, and operator tasks.

This module is the composition root: the process commands (serve, api, worker, migrate) are
defined here, and each group of operator commands lives in its own module under
:mod:`intellizap.commands` and is registered below.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Coroutine
from importlib.metadata import version
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from intellizap.commands import database, demo, groups, summaries, tenants, webhook
from intellizap.commands import jobs as job_commands
from intellizap.commands.common import MISCONFIGURED, database_url, fail, load_settings
from intellizap.logging import get_logger
from intellizap.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from intellizap.app import Roles

# The service's modules (FastAPI, uvicorn, the job queue, the LLM SDK) are imported by the
# commands that run them, so that an operator command starts in a fraction of the time.

cli = typer.Typer(
    name="intellizap",
    help="IntelliZap backend: WhatsApp group ingest, transcription and daily summaries.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
log = get_logger(__name__)

PortOption = Annotated[int | None, typer.Option(help="Port to listen on (default: PORT or 8000).")]
HostOption = Annotated[str | None, typer.Option(help="Interface to bind (default: HOST).")]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"intellizap {version('intellizap')}")
        raise typer.Exit()


@cli.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """IntelliZap backend: WhatsApp group ingest, transcription and daily summaries."""


def _stop_cleanly(signum: int, _frame: FrameType | None) -> None:
    # A requested stop is not a failure: exit 0 on SIGTERM (the platform's "stop"), 130 on ^C.
    raise SystemExit(0 if signum == signal.SIGTERM else 130)


def _exit_cleanly_on_signals() -> None:
    """uvicorn and the worker stop gracefully on SIGTERM/SIGINT, then uvicorn re-raises the
    signal to the handler it found; that handler is this one, so the process exits 0 (instead
    of "killed by SIGTERM") after its shutdown, also when the signal arrives during start-up."""
    signal.signal(signal.SIGTERM, _stop_cleanly)
    signal.signal(signal.SIGINT, _stop_cleanly)


def _check_metrics_port(settings: Settings) -> None:
    """A METRICS_PORT already in use is a configuration mistake: say so before starting."""
    if settings.metrics_port is None:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.metrics_host, settings.metrics_port))
        except OSError as exc:
            fail(
                f"METRICS_PORT={settings.metrics_port} on METRICS_HOST={settings.metrics_host} "
                f"cannot be used ({exc.strerror or exc}): choose a free port",
                MISCONFIGURED,
            )


def _run_on_fastest_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop where it is installed (with uvicorn's standard extras: not on
    Windows), as uvicorn runs the API and ``serve``; else on asyncio's own loop. A worker makes
    a socket round trip per statement and per HTTP call, and uvloop's are much cheaper."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _run_http(settings: Settings, roles: Roles, host: str | None, port: int | None) -> None:
    import uvicorn

    from intellizap.app import create_app

    _exit_cleanly_on_signals()
    _check_metrics_port(settings)
    if not settings.uses_embedded_database:
        # The embedded server is started (and migrated) by the app itself; a configured
        # database is checked now, so a wrong DATABASE_URL is one line, not a traceback.
        database_url(settings, schema=False)
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
    from intellizap.app import Roles

    _run_http(load_settings(service=True), Roles(migrate=True, worker=True), host, port)


@cli.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Only the HTTP API (for replicas behind a load balancer; run `intellizap migrate` first)."""
    from intellizap.app import Roles

    _run_http(load_settings(service=True), Roles(), host, port)


@cli.command()
def worker() -> None:
    """Only the job worker and periodic tasks (run as many as you like, on any machine).
    SIGTERM lets running jobs finish (up to 30 s); unfinished ones run again elsewhere."""
    from intellizap.observability.server import metrics_server
    from intellizap.task_modules import connect_queue, run_worker

    _exit_cleanly_on_signals()
    settings = load_settings(service=True)
    _check_metrics_port(settings)
    url = database_url(settings)

    async def run() -> None:
        main = asyncio.current_task()
        assert main is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, main.cancel)
        with metrics_server(settings, url):
            async with connect_queue(
                url, pool_size=settings.job_queue_pool_size
            ).open_async() as queue:
                try:
                    await run_worker(queue, settings, url)
                except asyncio.CancelledError:
                    log.info("worker stopped")

    _run_on_fastest_loop(run())


@cli.command()
def migrate() -> None:
    """Apply the database migrations (ours and the job queue's). Safe to run on every deploy."""
    from intellizap.db import migrate as migrations

    settings = load_settings(service=True)
    url = database_url(settings, schema=False)
    migrations.upgrade(url)
    typer.echo(f"database at revision {migrations.current_revision(url)}")


cli.add_typer(tenants.tenants_cli, name="usuarios")
cli.add_typer(groups.groups_cli, name="grupos")
cli.add_typer(job_commands.jobs_cli, name="jobs")
cli.add_typer(database.database_cli, name="db")
cli.add_typer(webhook.webhook_cli, name="webhook")
summaries.register(cli)
demo.register(cli)


def main() -> None:
    try:
        cli()
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(MISCONFIGURED)
