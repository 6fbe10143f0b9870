"""``intellizap resumo`` (a summary now, or its prompt with ``--dry-run``) and ``intellizap uso``
(the tenant's usage this quota cycle)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from intellizap.commands import tenant_views
from intellizap.commands.common import (
    InstanceArgument,
    InstanceOption,
    fail,
    load_settings,
    tenant_or_exit,
    with_database,
)
from intellizap.db.engine import Database
from intellizap.tenants.quota import account_usage
from intellizap.tenants.repository import group_by_jid


def resumo(
    group_jid: Annotated[str, typer.Argument(help="The group's JID (…@g.us).")],
    instance: InstanceOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the prompt and its token count; call nothing.")
    ] = False,
) -> None:
    """Summarise a group since its last summary, like /resumo typed in the group."""
    from intellizap.summaries.on_demand import request_on_demand
    from intellizap.summaries.preview import group_row
    from intellizap.summaries.service import draft
    from intellizap.task_modules import connect_queue

    settings = load_settings()

    async def work(database: Database, url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        group = await group_by_jid(database, tenant.id, group_jid)
        if group is None:
            fail(
                f"the instance {instance!r} has no group {group_jid!r} "
                f"(`intellizap grupos list {instance}` shows its groups)"
            )
        if dry_run:
            row = await group_row(database, group.id)
            assert row is not None  # found just above
            plan = await draft(database, settings, row, now=datetime.now(UTC))
            for message in plan.messages:
                typer.echo(f"--- {message['role']} ---\n{message['content']}")
            typer.echo(
                f"--- {len(plan.lines)} messages, ~{plan.prompt_tokens} prompt tokens, "
                f"{plan.chunks} LLM call(s) before merging ---"
            )
            return
        async with connect_queue(url).open_async() as queue:
            summary_id = await request_on_demand(
                database, queue, settings, tenant_id=tenant.id, group_id=group.id
            )
        if summary_id is None:
            fail("a summary of this group was requested moments ago; try again later")
        typer.echo(f"summary {summary_id} queued; a worker will write and send it")

    with_database(settings, work)


def uso(instance: InstanceArgument) -> None:
    """Token usage of the tenant's current quota cycle."""
    settings = load_settings()

    async def work(database: Database, _url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        status = await account_usage(
            database,
            tenant_id=tenant.id,
            default_zone=settings.default_timezone,
            now=datetime.now(UTC),
        )
        tenant_views.print_usage(status)

    with_database(settings, work)


def register(cli: typer.Typer) -> None:
    cli.command()(resumo)
    cli.command()(uso)
