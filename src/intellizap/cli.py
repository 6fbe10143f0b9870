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
from intellizap.commands.common import (
    InstanceArgument,
    InstanceOption,
    load_settings,
    tenant_or_exit,
    with_database,
)
from intellizap.db import migrate as migrations
from intellizap.db.engine import Database
from intellizap.logging import get_logger
from intellizap.settings import ConfigurationError, Settings

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
    _run_http(load_settings(), Roles(migrate=True, worker=True), host, port)


@cli.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Only the HTTP API (for replicas behind a load balancer; run `intellizap migrate` first)."""
    _run_http(load_settings(), Roles(), host, port)


@cli.command()
def worker() -> None:
    """Only the job worker and periodic tasks (run as many as you like, on any machine).
    SIGTERM lets running jobs finish (up to 30 s); unfinished ones run again elsewhere."""
    settings = load_settings()
    url, _embedded = start_database(settings)

    async def run() -> None:
        main = asyncio.current_task()
        assert main is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, main.cancel)
        async with jobs.connect(url, pool_size=settings.job_queue_pool_size).open_async() as queue:
            try:
                await jobs.run_worker(queue, settings, url)
            except asyncio.CancelledError:
                log.info("worker stopped")

    asyncio.run(run())


@cli.command()
def migrate() -> None:
    """Apply the database migrations (ours and the job queue's). Safe to run on every deploy."""
    settings = load_settings()
    url, _embedded = start_database(settings)
    migrations.upgrade(url)
    typer.echo(f"database at revision {migrations.current_revision(url)}")


groups_cli = typer.Typer(help="WhatsApp groups of a tenant.", no_args_is_help=True)
cli.add_typer(groups_cli, name="grupos")


@groups_cli.command("sync")
def sync_groups(
    instance: InstanceArgument,
) -> None:
    """Fetch the instance's groups from Evolution and record them (names; new ones inactive)."""
    from rich.progress import Progress

    from intellizap.evolution.client import EvolutionClient
    from intellizap.tenants.group_sync import store_groups

    settings = load_settings()

    async def work(database: Database, _url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        evolution = EvolutionClient.from_settings(settings)
        try:
            with Progress(transient=True) as progress:
                fetching = progress.add_task(f"fetching groups of {instance}…", total=None)
                groups = await evolution.fetch_all_groups(
                    tenant.instance, token=tenant.evolution_token
                )
                progress.update(fetching, total=len(groups), description="recording groups")
                result = await store_groups(
                    database, tenant.id, groups, lambda n: progress.advance(fetching, n)
                )
        finally:
            await evolution.aclose()
        typer.echo(f"{result.groups} groups of {instance}, {result.new} new (inactive)")

    with_database(settings, work)


@cli.command()
def resumo(
    group_jid: Annotated[str, typer.Argument(help="The group's JID (…@g.us).")],
    instance: InstanceOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the prompt and its token count; call nothing.")
    ] = False,
) -> None:
    """Summarise a group since its last summary, like /resumo typed in the group."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from intellizap.summaries.on_demand import request_on_demand
    from intellizap.summaries.service import draft

    settings = load_settings()

    async def work(database: Database, url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        async with database.session() as session:
            found = (
                (
                    await session.execute(
                        text(
                            "SELECT g.id AS group_id, g.nome, u.id AS tenant_id, u.fuso_horario"
                            " FROM grupos g JOIN usuarios u ON u.id = g.usuario_id"
                            " WHERE u.id = :tenant_id AND g.grupo_id_externo = :jid"
                        ),
                        {"tenant_id": tenant.id, "jid": group_jid},
                    )
                )
                .mappings()
                .first()
            )
        if found is None:
            typer.echo(f"the instance {instance!r} has no group {group_jid!r}", err=True)
            raise typer.Exit(1)
        if dry_run:
            row = {**found, "id": None, "periodo_fim": None}
            plan = await draft(database, settings, row, now=datetime.now(UTC))
            for message in plan.messages:
                typer.echo(f"--- {message['role']} ---\n{message['content']}")
            typer.echo(
                f"--- {len(plan.lines)} messages, ~{plan.prompt_tokens} prompt tokens, "
                f"{plan.chunks} LLM call(s) before merging ---"
            )
            return
        async with jobs.connect(url).open_async() as queue:
            summary_id = await request_on_demand(
                database, queue, settings, tenant_id=tenant.id, group_id=found["group_id"]
            )
        if summary_id is None:
            typer.echo(
                "a summary of this group was requested moments ago; try again later", err=True
            )
            raise typer.Exit(1)
        typer.echo(f"summary {summary_id} queued; a worker will write and send it")

    with_database(settings, work)


@cli.command()
def uso(instance: InstanceArgument) -> None:
    """Token usage of the tenant's current quota cycle."""
    from datetime import UTC, datetime

    from intellizap.tenants.quota import account_usage

    settings = load_settings()

    async def work(database: Database, _url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        status = await account_usage(
            database,
            tenant_id=tenant.id,
            default_zone=settings.default_timezone,
            now=datetime.now(UTC),
        )
        limit = f"{status.limit:,}" if status.limit is not None else "no limit"
        typer.echo(f"cycle since {status.cycle_start.date().isoformat()} ({status.zone.key})")
        typer.echo(f"platform key: {status.used:,} tokens of {limit}")
        typer.echo(f"own key:      {status.used_own_key:,} tokens (not counted in the quota)")
        typer.echo(f"voice notes:  {status.audio_seconds / 60:,.1f} minutes transcribed")
        if status.exceeded:
            typer.echo("quota exceeded: summaries on the platform key are refused")

    with_database(settings, work)


def main() -> None:
    try:
        cli()
    except ConfigurationError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(2)
