"""``intellizap usuarios …``: onboard a tenant and change its plan from the command line.

The frontend does this in production; operators and self-hosters need it too. Changes reach the
running service within ``TENANT_CACHE_SECONDS`` (no restart).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from intellizap.commands import tenant_views
from intellizap.commands.common import (
    InstanceArgument,
    checked,
    fail,
    load_settings,
    with_database,
)
from intellizap.db.engine import Database
from intellizap.summaries.history import recent_summaries
from intellizap.summaries.language import normalize_language
from intellizap.tenants import plan
from intellizap.tenants.quota import account_usage
from intellizap.tenants.repository import (
    TenantExists,
    TenantNotFound,
    create_tenant,
    group_settings,
    tenant_plan,
    tenant_plans,
    update_tenant,
)

tenants_cli = typer.Typer(
    help="Tenants (usuarios): one per Evolution instance.", no_args_is_help=True
)

HourOption = Annotated[
    str | None, typer.Option("--hora", help="Daily summary time, HH:MM local (default 20:00).")
]
ZoneOption = Annotated[
    str | None,
    typer.Option("--fuso", help="IANA time zone of the hour (default DEFAULT_TIMEZONE)."),
]
TokensOption = Annotated[
    int | None,
    typer.Option("--tokens-mes", help="Platform-key tokens per monthly cycle (default no limit)."),
]
GroupsOption = Annotated[
    int | None, typer.Option("--max-grupos", help="Groups that may be active (default no limit).")
]
AuthOption = Annotated[
    str | None, typer.Option("--auth-id", help="The owner's Supabase Auth user id (UUID).")
]
RenewalOption = Annotated[
    int | None,
    typer.Option("--dia-renovacao", help="Day of the month (1-28) the token quota renews."),
]
TranscriptionOption = Annotated[
    bool | None,
    typer.Option(
        "--transcricao/--no-transcricao", help="Voice-note transcription for this tenant."
    ),
]
MembersOption = Annotated[
    bool | None,
    typer.Option(
        "--resumo-membros/--no-resumo-membros",
        help="Let group members (not only the owner) ask for /resumo.",
    ),
]

LanguageOption = Annotated[
    str | None,
    typer.Option(
        "--idioma", help="Summary language for the account (pt-BR, en, es…; auto: the chat's)."
    ),
]
MentionsOption = Annotated[
    bool | None,
    typer.Option(
        "--mencoes/--no-mencoes",
        help="Mention (and so notify) the people with open items in group summaries.",
    ),
]
DigestOption = Annotated[
    bool | None,
    typer.Option(
        "--resumo-dono/--no-resumo-dono",
        help="A daily digest of all the groups in the owner's private chat (needs --numero-dono).",
    ),
]
OwnerNumberOption = Annotated[
    str | None,
    typer.Option(
        "--numero-dono",
        help="The owner's own WhatsApp number (country and area code, e.g. 5511988887777); "
        "'' to clear it.",
    ),
]


def _plan_values(
    *,
    hora: str | None,
    fuso: str | None,
    tokens_mes: int | None,
    max_grupos: int | None,
    auth_id: str | None,
    dia_renovacao: int | None,
    transcricao: bool | None,
    resumo_membros: bool | None,
    idioma: str | None = None,
    mencoes: bool | None = None,
    resumo_dono: bool | None = None,
    numero_dono: str | None = None,
) -> dict[str, object]:
    """The options given, validated, under the model's field names."""
    values: dict[str, object] = {}
    if hora is not None:
        values["summary_time"] = checked(plan.summary_time, hora)
    if fuso is not None:
        values["timezone"] = checked(plan.timezone, fuso)
    if tokens_mes is not None:
        values["monthly_token_quota"] = checked(plan.non_negative, "--tokens-mes", tokens_mes)
    if max_grupos is not None:
        values["max_groups"] = checked(plan.non_negative, "--max-grupos", max_grupos)
    if auth_id is not None:
        values["auth_id"] = checked(plan.auth_id, auth_id)
    if dia_renovacao is not None:
        values["quota_renewal_day"] = checked(plan.renewal_day, dia_renovacao)
    if transcricao is not None:
        values["transcription_enabled"] = transcricao
    if resumo_membros is not None:
        values["members_can_summarize"] = resumo_membros
    if idioma is not None:
        values["language"] = checked(normalize_language, idioma)
    if mencoes is not None:
        values["mentions_enabled"] = mencoes
    if resumo_dono is not None:
        values["owner_digest_enabled"] = resumo_dono
    if numero_dono is not None:
        values["owner_number"] = checked(plan.owner_number, numero_dono) if numero_dono else None
    return values


@tenants_cli.command("add")
def add(
    instance: InstanceArgument,
    hora: HourOption = None,
    fuso: ZoneOption = None,
    tokens_mes: TokensOption = None,
    max_grupos: GroupsOption = None,
    auth_id: AuthOption = None,
    dia_renovacao: RenewalOption = None,
    transcricao: TranscriptionOption = None,
    resumo_membros: MembersOption = None,
) -> None:
    """Create the tenant of an Evolution instance. Its groups start disabled: enable them with
    `intellizap grupos enable`."""
    settings = load_settings()
    name = checked(plan.instance_name, instance)
    values = _plan_values(
        hora=hora or "20:00",
        fuso=fuso or settings.default_timezone,
        tokens_mes=tokens_mes,
        max_grupos=max_grupos,
        auth_id=auth_id,
        dia_renovacao=dia_renovacao or 1,
        transcricao=bool(transcricao),
        resumo_membros=resumo_membros,
    )

    async def work(database: Database, _url: str) -> None:
        try:
            await create_tenant(database, name, values)
        except TenantExists:
            fail(
                f"a tenant already has the instance {name!r}: "
                f"change it with `intellizap usuarios set {name} …`"
            )
        created = await tenant_plan(database, name)
        typer.echo(f"tenant {name} created ({created.id})")
        tenant_views.print_plan(created)
        typer.echo(
            f"next: `intellizap grupos sync {name}` (needs Evolution) or "
            f"`intellizap grupos enable {name} GROUP_JID`"
        )

    with_database(settings, work)


@tenants_cli.command("set")
def set_plan(
    instance: InstanceArgument,
    hora: HourOption = None,
    fuso: ZoneOption = None,
    tokens_mes: TokensOption = None,
    sem_limite_tokens: Annotated[
        bool, typer.Option("--sem-limite-tokens", help="Remove the monthly token limit.")
    ] = False,
    max_grupos: GroupsOption = None,
    sem_limite_grupos: Annotated[
        bool, typer.Option("--sem-limite-grupos", help="Remove the group limit.")
    ] = False,
    auth_id: AuthOption = None,
    dia_renovacao: RenewalOption = None,
    transcricao: TranscriptionOption = None,
    resumo_membros: MembersOption = None,
    idioma: LanguageOption = None,
    mencoes: MentionsOption = None,
    resumo_dono: DigestOption = None,
    numero_dono: OwnerNumberOption = None,
) -> None:
    """Change a tenant's plan and summary preferences: only the options given change."""
    settings = load_settings()
    if sem_limite_tokens and tokens_mes is not None:
        fail("give either --tokens-mes or --sem-limite-tokens, not both")
    if sem_limite_grupos and max_grupos is not None:
        fail("give either --max-grupos or --sem-limite-grupos, not both")
    values = _plan_values(
        hora=hora,
        fuso=fuso,
        tokens_mes=tokens_mes,
        max_grupos=max_grupos,
        auth_id=auth_id,
        dia_renovacao=dia_renovacao,
        transcricao=transcricao,
        resumo_membros=resumo_membros,
        idioma=idioma,
        mencoes=mencoes,
        resumo_dono=resumo_dono,
        numero_dono=numero_dono,
    )
    if sem_limite_tokens:
        values["monthly_token_quota"] = None
    if sem_limite_grupos:
        values["max_groups"] = None
    if not values:
        fail("nothing to change: give at least one option (see --help)")

    async def work(database: Database, _url: str) -> None:
        try:
            await update_tenant(database, instance, values)
        except TenantNotFound:
            fail(f"no tenant has the instance {instance!r}; `intellizap usuarios list` shows them")
        updated = await tenant_plan(database, instance)
        typer.echo(f"tenant {instance} updated")
        tenant_views.print_plan(updated)
        if updated.max_groups is not None and updated.active_groups > updated.max_groups:
            typer.echo(
                f"note: {updated.active_groups} groups are active but max_grupos is "
                f"{updated.max_groups}: only the {updated.max_groups} oldest are stored"
            )

    with_database(settings, work)


@tenants_cli.command("list")
def list_tenants(
    limit: Annotated[int, typer.Option(help="Show at most this many (by instance name).")] = 200,
) -> None:
    """Every tenant with its plan and how many of its groups are active."""
    settings = load_settings()

    async def work(database: Database, _url: str) -> None:
        plans, total = await tenant_plans(database, limit=max(limit, 1))
        if not plans:
            typer.echo("no tenants yet: `intellizap usuarios add INSTANCE` creates one")
            return
        tenant_views.print_plans(plans)
        if total > len(plans):
            typer.echo(f"({len(plans)} of {total} tenants shown; use --limit)")

    with_database(settings, work)


@tenants_cli.command("show")
def show(instance: InstanceArgument) -> None:
    """A tenant's plan, its usage this cycle, its groups and its last summaries."""
    settings = load_settings()

    async def work(database: Database, _url: str) -> None:
        try:
            current = await tenant_plan(database, instance)
        except TenantNotFound:
            fail(f"no tenant has the instance {instance!r}; `intellizap usuarios list` shows them")
        usage = await account_usage(
            database,
            tenant_id=current.id,
            default_zone=settings.default_timezone,
            now=datetime.now(UTC),
        )
        groups = await group_settings(database, current.id)
        summaries = await recent_summaries(database, current.id, limit=10)
        typer.echo(f"tenant {current.instance} ({current.id})")
        tenant_views.print_plan(current)
        typer.echo("")
        tenant_views.print_usage(usage)
        typer.echo("")
        tenant_views.print_groups(groups)
        typer.echo("")
        tenant_views.print_summaries(summaries, usage.zone)

    with_database(settings, work)
