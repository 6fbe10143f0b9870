"""``intellizap grupos …``: a tenant's WhatsApp groups — fetch them from Evolution, list them,
choose which are stored, summarised and transcribed."""

from __future__ import annotations

from datetime import time
from typing import Annotated

import typer

from intellizap.commands import tenant_views
from intellizap.commands.common import (
    MISCONFIGURED,
    InstanceArgument,
    checked,
    fail,
    load_settings,
    tenant_or_exit,
    with_database,
)
from intellizap.db.engine import Database
from intellizap.evolution.errors import (
    EvolutionError,
    EvolutionUnavailable,
    InstanceNotFound,
    NotAuthorized,
)
from intellizap.summaries.destinations import checked_destination
from intellizap.summaries.language import normalize_language
from intellizap.summaries.prompt import checked_instructions
from intellizap.tenants import plan
from intellizap.tenants.repository import (
    GroupLimitReached,
    change_group,
    group_settings,
    set_group_options,
    tenant_plan,
)

groups_cli = typer.Typer(help="WhatsApp groups of a tenant.", no_args_is_help=True)

GroupArgument = Annotated[str, typer.Argument(help="The group's JID (…@g.us).")]
SummaryOption = Annotated[
    bool | None,
    typer.Option(
        "--resumo/--no-resumo",
        help="Daily summary of the group (enable: on unless --no-resumo).",
    ),
]
TranscriptionOption = Annotated[
    bool | None,
    typer.Option(
        "--transcricao/--no-transcricao",
        help="Transcribe its voice notes (also needs the tenant's transcription on).",
    ),
]


@groups_cli.command("sync")
def sync_groups(instance: InstanceArgument) -> None:
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
                try:
                    groups = await evolution.fetch_all_groups(
                        tenant.instance, token=tenant.evolution_token
                    )
                except EvolutionUnavailable as exc:
                    progress.stop()
                    fail(
                        f"EVOLUTION_API_URL: the Evolution server at {settings.evolution_api_url}"
                        f" did not answer ({exc}).\nCheck the URL and that Evolution is running.",
                        MISCONFIGURED,
                    )
                except NotAuthorized:
                    progress.stop()
                    fail(
                        "Evolution refused the API key: check EVOLUTION_API_KEY (or the "
                        "tenant's evolution_token)",
                        MISCONFIGURED,
                    )
                except InstanceNotFound:
                    progress.stop()
                    fail(
                        f"Evolution at {settings.evolution_api_url} has no instance {instance!r}:"
                        " create it there, or fix the tenant's instance name"
                    )
                except EvolutionError as exc:
                    progress.stop()
                    fail(f"Evolution refused the request: {exc}")
                progress.update(fetching, total=len(groups), description="recording groups")
                result = await store_groups(
                    database, tenant.id, groups, lambda n: progress.advance(fetching, n)
                )
        finally:
            await evolution.aclose()
        typer.echo(f"{result.groups} groups of {instance}, {result.new} new (inactive)")

    with_database(settings, work)


@groups_cli.command("list")
def list_groups(instance: InstanceArgument) -> None:
    """The tenant's groups: which are active, summarised, transcribed, and actually stored."""
    settings = load_settings()

    async def work(database: Database, _url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        tenant_views.print_groups(await group_settings(database, tenant.id))

    with_database(settings, work)


def _change(
    instance: str,
    group_jid: str,
    *,
    active: bool,
    summary: bool | None,
    transcription: bool | None,
) -> None:
    settings = load_settings()
    jid = checked(plan.group_jid, group_jid)

    async def work(database: Database, _url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        current = {group.jid: group for group in await group_settings(database, tenant.id)}
        if not active and jid not in current:
            fail(f"the instance {instance!r} has no group {jid!r} (`intellizap grupos list`)")
        was_active = jid in current and current[jid].active
        # Turning a group on means "summarise it" unless told otherwise.
        wanted_summary = summary if summary is not None or was_active or not active else True
        try:
            change = await change_group(
                database,
                tenant.id,
                jid,
                active=active,
                summary=wanted_summary,
                transcription=transcription,
            )
        except GroupLimitReached as exc:
            fail(
                f"the instance {instance!r} already has {exc.active} active groups and its "
                f"max_grupos is {exc.limit}: disable one (`intellizap grupos disable {instance} "
                f"JID`) or raise the limit (`intellizap usuarios set {instance} "
                f"--max-grupos {exc.limit + 1}`)"
            )
        after = {group.jid: group for group in await group_settings(database, tenant.id)}[jid]
        state = "enabled" if after.active else "disabled"
        if change.created:
            state += " (new: not seen in a webhook or a sync yet)"
        typer.echo(
            f"group {jid} {state}: summary {'on' if after.summary_enabled else 'off'}, "
            f"transcription {'on' if after.transcription_enabled else 'off'}"
        )
        if (
            after.transcription_enabled
            and not (await tenant_plan(database, instance)).transcription_enabled
        ):
            typer.echo(
                f"note: transcription is off for the tenant, so no voice note is transcribed: "
                f"`intellizap usuarios set {instance} --transcricao`"
            )

    with_database(settings, work)


@groups_cli.command("enable")
def enable(
    instance: InstanceArgument,
    group_jid: GroupArgument,
    resumo: SummaryOption = None,
    transcricao: TranscriptionOption = None,
) -> None:
    """Store the group's messages (and summarise it, unless --no-resumo). Creates the group
    when it was never synced nor seen. Refused beyond the tenant's max_grupos."""
    _change(instance, group_jid, active=True, summary=resumo, transcription=transcricao)


@groups_cli.command("disable")
def disable(
    instance: InstanceArgument,
    group_jid: GroupArgument,
    resumo: SummaryOption = None,
    transcricao: TranscriptionOption = None,
) -> None:
    """Stop storing the group's messages (and its summaries); the flags given are also set."""
    _change(instance, group_jid, active=False, summary=resumo, transcription=transcricao)


@groups_cli.command("resumo")
def summary_options(
    instance: InstanceArgument,
    group_jid: GroupArgument,
    destino: Annotated[
        str | None,
        typer.Option(help="Where the summary goes: grupo, dono (the owner's chat) or ambos."),
    ] = None,
    idioma: Annotated[
        str | None, typer.Option(help="The summary's language (pt-BR, en, es…; auto: the chat's).")
    ] = None,
    instrucoes: Annotated[
        str | None,
        typer.Option(help="The customer's wishes for the summary (≤ 500 characters; '' clears)."),
    ] = None,
    semanal: Annotated[
        str | None,
        typer.Option(
            help="Weekly recap day: seg, ter, qua, qui, sex, sab, dom; 'nao' turns it off."
        ),
    ] = None,
    hora_semanal: Annotated[
        str | None,
        typer.Option(help="The weekly recap's hour, HH:MM local ('' : the account's hour)."),
    ] = None,
) -> None:
    """Set the group's summary options (README, "Summary options"): only those given change."""
    settings = load_settings()
    values: dict[str, object] = {}
    if destino is not None:
        values["summary_destination"] = checked(checked_destination, destino)
    if idioma is not None:
        values["language"] = checked(normalize_language, idioma)
    if instrucoes is not None:
        values["summary_instructions"] = checked(checked_instructions, instrucoes) or None
    if semanal is not None:
        off = semanal.strip().lower() in ("nao", "não", "off", "")
        values["weekly_recap_day"] = None if off else checked(plan.weekday, semanal)
    if hora_semanal is not None:
        hour = checked(plan.summary_time, hora_semanal) if hora_semanal.strip() else None
        values["weekly_recap_time"] = time.fromisoformat(hour) if hour else None
    if not values:
        fail("nothing to change: give at least one option (see --help)")
    jid = checked(plan.group_jid, group_jid)

    async def work(database: Database, _url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        if not await set_group_options(database, tenant.id, jid, values):
            fail(f"the instance {instance!r} has no group {jid!r} (`intellizap grupos list`)")
        typer.echo(f"group {jid}: summary options updated ({', '.join(sorted(values))})")

    with_database(settings, work)
