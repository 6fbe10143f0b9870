"""``intellizap demo``: post a short example conversation to a running service as Evolution
would (one ``messages.upsert`` webhook per message, timestamped now), and show it stored.

The README's quick start uses it after ``usuarios add`` and ``grupos enable``; ``--print`` writes
one such webhook body instead, for ``curl``.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
import typer

from intellizap.commands.common import (
    MISCONFIGURED,
    fail,
    load_settings,
    tenant_or_exit,
    with_database,
)
from intellizap.db.engine import Database
from intellizap.ingest.credentials import (
    INSTANCE_HEADER,
    SECRET_HEADER,
    encode_instance,
    instance_secret,
)
from intellizap.ingest.repository import stored_messages
from intellizap.settings import Settings
from intellizap.tenants.repository import group_settings

DEFAULT_INSTANCE = "demo"
DEFAULT_GROUP = "120363401234567890@g.us"
WEBHOOK_PATH = "/webhooks/evolution"


def _example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        files("intellizap.commands").joinpath("demo_conversation.json").read_text("utf-8")
    )
    return data


def demo_webhooks(instance: str, group_jid: str, *, now: float) -> list[dict[str, Any]]:
    """The example conversation as Evolution ``messages.upsert`` webhooks, one minute apart and
    ending at ``now``; message ids are unique per run, so a second run adds messages."""
    example = _example()
    conversation = example["conversation"]
    run = f"{int(now * 1000):X}"[-10:]
    webhooks = []
    for index, (number, name, text) in enumerate(conversation):
        sent_at = int(now) - 60 * (len(conversation) - 1 - index)
        webhook = copy.deepcopy(example["webhook"])
        webhook["instance"] = instance
        webhook["date_time"] = (
            datetime.fromtimestamp(sent_at, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        data = webhook["data"]
        data["key"].update(
            remoteJid=group_jid,
            id=f"DEMO{run}{index:06d}",
            participant=f"{number}@s.whatsapp.net",
        )
        data["pushName"] = name
        data["message"] = {"conversation": text}
        data["messageTimestamp"] = sent_at
        webhooks.append(webhook)
    return webhooks


def _credentials(settings: Settings, body: dict[str, Any]) -> dict[str, str]:
    """What Evolution sends once `intellizap webhook set` configured the instance: its own
    secret, derived from ``WEBHOOK_SECRET``; and the global Evolution key in the body."""
    if settings.evolution_api_key is not None:
        body["apikey"] = settings.evolution_api_key.get_secret_value()
    if settings.webhook_secret is None:
        return {}
    instance = body["instance"]
    return {
        INSTANCE_HEADER: encode_instance(instance),
        SECRET_HEADER: instance_secret(settings.webhook_secret.get_secret_value(), instance),
    }


def _service_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    return f"http://{host}:{settings.port}"


async def _post_all(url: str, settings: Settings, webhooks: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        for webhook in webhooks:
            headers = _credentials(settings, webhook)
            try:
                response = await client.post(WEBHOOK_PATH, json=webhook, headers=headers)
            except httpx.TransportError:
                fail(
                    f"nothing answers at {url}: start the service first "
                    "(`intellizap serve` in another terminal), or pass --url",
                    MISCONFIGURED,
                )
            if response.status_code == 401:
                fail(
                    f"the service at {url} refused the webhook's credentials: run the demo with "
                    "the same WEBHOOK_SECRET / EVOLUTION_API_KEY as the service",
                    MISCONFIGURED,
                )
            if response.status_code != 200:
                fail(f"the service answered {response.status_code}: {response.text[:300]}")


def demo(
    instance: Annotated[
        str, typer.Option("--instancia", help="The tenant's instance.")
    ] = DEFAULT_INSTANCE,
    group_jid: Annotated[str, typer.Option("--grupo", help="An enabled group.")] = DEFAULT_GROUP,
    url: Annotated[
        str | None, typer.Option(help="The running service (default: HOST and PORT).")
    ] = None,
    print_only: Annotated[
        bool,
        typer.Option("--print", help="Print one webhook body (for curl) and post nothing."),
    ] = False,
) -> None:
    """Post an example conversation to the running service and show it stored."""
    if print_only:
        *_, latest = demo_webhooks(instance, group_jid, now=time.time())
        typer.echo(json.dumps(latest, ensure_ascii=False, indent=2))
        return
    settings = load_settings()
    service = (url or _service_url(settings)).rstrip("/")

    async def work(database: Database, _url: str) -> None:
        tenant = await tenant_or_exit(database, instance)
        groups = {group.jid: group for group in await group_settings(database, tenant.id)}
        group = groups.get(group_jid)
        if group is None or not group.within_limit:
            fail(
                f"the group {group_jid} is not enabled for {instance!r}: run "
                f"`intellizap grupos enable {instance} {group_jid}` first"
            )
        webhooks = demo_webhooks(instance, group_jid, now=time.time())
        await _post_all(service, settings, webhooks)
        ids = [webhook["data"]["key"]["id"] for webhook in webhooks]
        stored = await stored_messages(database, group.id, ids)
        zone = ZoneInfo(settings.default_timezone)
        typer.echo(f"{len(stored)} of {len(ids)} messages stored in group {group_jid}:")
        for message in stored:
            at = message.sent_at.astimezone(zone).strftime("%H:%M") if message.sent_at else "--"
            typer.echo(f"  {at} {message.author_name}: {message.text}")
        typer.echo(
            f"next: `intellizap resumo {group_jid} --instancia {instance} --dry-run` "
            "prints the summary prompt"
        )
        if len(stored) != len(ids):
            raise typer.Exit(1)

    with_database(settings, work)


def register(cli: typer.Typer) -> None:
    cli.command()(demo)


__all__ = ["demo_webhooks", "register"]
