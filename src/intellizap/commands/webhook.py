"""``intellizap webhook url|set|check``: the webhook Evolution calls for each instance.

Each instance gets its own credentials (:mod:`intellizap.ingest.credentials`); these commands
print them, write them into Evolution and compare what Evolution stored with what it should be.
The rollout from the old shared secret (docs/security.md) is ``set --all``, then ``check --all``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from intellizap.commands.common import load_settings, tenant_or_exit, with_database
from intellizap.db.engine import Database
from intellizap.evolution.client import EvolutionClient
from intellizap.evolution.errors import EvolutionError
from intellizap.evolution.webhooks import HeadersUnsupported, set_body
from intellizap.ingest.subscription import (
    NotConfigured,
    differences,
    global_webhook_url,
    instance_webhook,
)
from intellizap.settings import Settings
from intellizap.tenants.repository import TenantAccount, all_tenants

webhook_cli = typer.Typer(
    help="The webhook Evolution calls for each instance (each with its own credentials).",
    no_args_is_help=True,
)

InstanceOrAll = Annotated[
    str | None,
    typer.Argument(help="The tenant's Evolution instance (or --all).", show_default=False),
]
AllOption = Annotated[bool, typer.Option("--all", help="Every tenant with an instance.")]
InUrlOption = Annotated[
    bool,
    typer.Option(
        "--credentials-in-url",
        help="Credentials in the URL instead of headers (Evolution v2 older than 2.2 sends no "
        "headers; Evolution 1.8, EVOLUTION_API_VERSION=1, always gets them in the URL).",
    ),
]
CONCURRENT_CALLS = 8


def _checked(settings: Settings, credentials_in_url: bool) -> None:
    """Exit 2, saying what to set, when the configuration cannot produce a webhook."""
    try:
        set_body(
            instance_webhook(settings, "-", credentials_in_url=credentials_in_url),
            settings.evolution_api_version,
        )
    except (NotConfigured, HeadersUnsupported) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


async def _tenants(database: Database, instance: str | None) -> list[TenantAccount]:
    return [await tenant_or_exit(database, instance)] if instance else await all_tenants(database)


def _one_or_all(instance: str | None, every: bool) -> None:
    if (instance is None) == (not every):
        typer.echo("name one INSTANCE, or pass --all (not both)", err=True)
        raise typer.Exit(2)


def _for_each(
    settings: Settings,
    instance: str | None,
    act: Callable[[EvolutionClient, TenantAccount], Awaitable[str | None]],
) -> list[tuple[str, str]]:
    """Run ``act`` for the tenant (or every tenant), a few at a time; returns the
    ``(instance, problem)`` pairs of those that did not succeed."""
    problems: list[tuple[str, str]] = []

    async def work(database: Database, _url: str) -> None:
        tenants = await _tenants(database, instance)
        evolution = EvolutionClient.from_settings(settings)
        slots = asyncio.Semaphore(CONCURRENT_CALLS)

        async def one(tenant: TenantAccount) -> None:
            async with slots:
                try:
                    problem = await act(evolution, tenant)
                except EvolutionError as exc:
                    problem = str(exc)
            if problem is not None:
                problems.append((tenant.instance, problem))

        try:
            await asyncio.gather(*(one(tenant) for tenant in tenants))
        finally:
            await evolution.aclose()
        if not tenants:
            typer.echo("no tenant has an instance (usuarios.instancia)")

    with_database(settings, work)
    return sorted(problems)


@webhook_cli.command("url")
def url(
    instance: InstanceOrAll = None,
    for_global: Annotated[
        bool,
        typer.Option(
            "--global",
            help="Print WEBHOOK_GLOBAL_URL for Evolution's environment (valid for every "
            "instance: never give it to a tenant).",
        ),
    ] = False,
    credentials_in_url: InUrlOption = False,
) -> None:
    """Print the `/webhook/set` body Evolution needs for INSTANCE, its credentials included
    (the instance's own: they authenticate nothing else)."""
    settings = load_settings()
    if for_global:
        try:
            typer.echo(global_webhook_url(settings))
        except NotConfigured as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        return
    if instance is None:
        typer.echo("name the INSTANCE (or pass --global)", err=True)
        raise typer.Exit(2)
    _checked(settings, credentials_in_url)

    async def work(database: Database, _url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        config = instance_webhook(settings, tenant.instance, credentials_in_url=credentials_in_url)
        body = set_body(config, settings.evolution_api_version)
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))

    with_database(settings, work)


@webhook_cli.command("set")
def set_webhook(
    instance: InstanceOrAll = None,
    every: AllOption = False,
    credentials_in_url: InUrlOption = False,
) -> None:
    """Point Evolution's webhook of INSTANCE (or of every instance) at this service, with the
    instance's own credentials. Safe to repeat."""
    settings = load_settings()
    _one_or_all(instance, every)
    _checked(settings, credentials_in_url)

    async def act(evolution: EvolutionClient, tenant: TenantAccount) -> str | None:
        config = instance_webhook(settings, tenant.instance, credentials_in_url=credentials_in_url)
        await evolution.set_webhook(tenant.instance, config, token=tenant.evolution_token)
        typer.echo(f"{tenant.instance}: webhook set")
        return None

    failed = _for_each(settings, instance, act)
    for name, problem in failed:
        typer.echo(f"{name}: not set: {problem}", err=True)
    if failed:
        typer.echo(f"{len(failed)} instance(s) not set; run the command again for them", err=True)
        raise typer.Exit(1)


@webhook_cli.command("check")
def check(
    instance: InstanceOrAll = None,
    every: AllOption = False,
    credentials_in_url: InUrlOption = False,
) -> None:
    """Compare Evolution's webhook of INSTANCE (or of every instance) with what it should be.
    Exit 1 when any differs."""
    settings = load_settings()
    _one_or_all(instance, every)
    _checked(settings, credentials_in_url)

    async def act(evolution: EvolutionClient, tenant: TenantAccount) -> str | None:
        expected = instance_webhook(
            settings, tenant.instance, credentials_in_url=credentials_in_url
        )
        found = await evolution.find_webhook(tenant.instance, token=tenant.evolution_token)
        problems = differences(expected, found)
        if problems:
            return "; ".join(problems)
        typer.echo(f"{tenant.instance}: current")
        return None

    outdated = _for_each(settings, instance, act)
    for name, problem in outdated:
        typer.echo(f"{name}: {problem} (fix: intellizap webhook set {name})")
    if outdated:
        raise typer.Exit(1)
