"""``intellizap webhook url|set|check`` as its own process, against the fake Evolution."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest

from intellizap.db.engine import Database
from intellizap.ingest.credentials import global_token, instance_jwt_key, instance_secret
from intellizap.ingest.subscription import EVENTS
from tests.conftest import WEBHOOK_SECRET, run_cli
from tests.factories import create_tenant
from tests.fakes.evolution import FakeEvolution

PUBLIC_URL = "https://intellizap.example.com"
GLOBAL_KEY = "evolution-global-key-123456"
JWT_KEY = "jwt-signing-key-for-tests-0123456789"


def webhook_cli(
    database_url: str, evolution: FakeEvolution, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    values = {
        "EVOLUTION_API_URL": evolution.url,
        "EVOLUTION_API_KEY": GLOBAL_KEY,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PUBLIC_URL": PUBLIC_URL,
        "EVOLUTION_API_VERSION": str(evolution.api_version),
    }
    values.update(env)
    return run_cli(database_url, "webhook", *args, **values)


async def cli(database_url: str, evolution: FakeEvolution, *args: str, **env: str) -> Any:
    return await asyncio.to_thread(webhook_cli, database_url, evolution, *args, **env)


@pytest.fixture
async def tenants(clean_database: Database, evolution: FakeEvolution) -> list[Any]:
    created = [
        await create_tenant(clean_database, name, evolution_token=f"token-of-{name}")
        for name in ("acme-support", "beta-store", "gamma")
    ]
    evolution.instance_tokens = {t.evolution_token: t.instance for t in created}
    return created


def expected_v2(instance: str) -> dict[str, Any]:
    return {
        "url": f"{PUBLIC_URL}/webhooks/evolution",
        "headers": {
            "X-Webhook-Instance": instance,
            "X-Webhook-Secret": instance_secret(WEBHOOK_SECRET, instance),
        },
        "enabled": True,
        "events": list(EVENTS),
        "webhookByEvents": False,
        "webhookBase64": True,
    }


async def test_set_all_gives_every_instance_its_own_credentials(
    database_url: str, evolution: FakeEvolution, tenants: list[Any]
) -> None:
    result = await cli(database_url, evolution, "set", "--all")

    assert result.returncode == 0, result.stderr
    for tenant in tenants:
        assert f"{tenant.instance}: webhook set" in result.stdout
        stored = evolution.webhooks[tenant.instance]
        assert {k: stored[k] for k in expected_v2(tenant.instance)} == expected_v2(tenant.instance)
    # Each call used the tenant's own token, which works for that instance only.
    calls = evolution.requests_to("/webhook/set/")
    assert sorted((c.path.rsplit("/", 1)[1], c.key) for c in calls) == [
        (t.instance, t.evolution_token) for t in tenants
    ]
    # No secret of one instance works for another: every header secret is different.
    assert (
        len({evolution.webhooks[t.instance]["headers"]["X-Webhook-Secret"] for t in tenants}) == 3
    )
    # The master secret itself is printed nowhere.
    assert WEBHOOK_SECRET not in result.stdout + result.stderr


async def test_check_tells_current_from_outdated_and_set_fixes_it(
    database_url: str, evolution: FakeEvolution, tenants: list[Any]
) -> None:
    await cli(database_url, evolution, "set", "acme-support")
    # beta-store still has the webhook of the old README: the shared secret, no instance header.
    evolution.webhooks["beta-store"] = {
        "url": f"{PUBLIC_URL}/webhooks/evolution",
        "headers": {"X-Webhook-Secret": WEBHOOK_SECRET},
        "enabled": True,
        "events": list(EVENTS),
        "webhookByEvents": False,
        "webhookBase64": True,
    }
    # gamma has none.

    before = await cli(database_url, evolution, "check", "--all")

    assert before.returncode == 1
    lines = dict(line.split(": ", 1) for line in before.stdout.strip().splitlines())
    assert lines["acme-support"] == "current"
    assert lines["beta-store"] == (
        "the X-Webhook-Instance header is missing; the X-Webhook-Secret header is not this "
        "instance's (fix: intellizap webhook set beta-store)"
    )
    assert lines["gamma"] == "no webhook is configured (fix: intellizap webhook set gamma)"
    assert WEBHOOK_SECRET not in before.stdout  # differences never show a secret

    assert (await cli(database_url, evolution, "set", "--all")).returncode == 0
    after = await cli(database_url, evolution, "check", "--all")
    assert after.returncode == 0, after.stdout
    assert after.stdout.count(": current") == 3


async def test_set_all_reports_the_instances_it_could_not_set(
    database_url: str, evolution: FakeEvolution, tenants: list[Any]
) -> None:
    evolution.instances = {"acme-support", "gamma"}  # beta-store was deleted in Evolution

    result = await cli(database_url, evolution, "set", "--all")

    assert result.returncode == 1
    assert "beta-store: not set: Evolution instance not found" in result.stderr
    assert "1 instance(s) not set; run the command again for them" in result.stderr
    assert set(evolution.webhooks) == {"acme-support", "gamma"}


async def test_url_prints_the_set_body_and_the_global_webhook(
    database_url: str, evolution: FakeEvolution, tenants: list[Any]
) -> None:
    body = json.loads((await cli(database_url, evolution, "url", "gamma")).stdout)
    assert body == {
        "webhook": {
            "enabled": True,
            "url": f"{PUBLIC_URL}/webhooks/evolution",
            "headers": expected_v2("gamma")["headers"],
            "byEvents": False,
            "base64": True,
            "events": list(EVENTS),
        }
    }
    global_url = (await cli(database_url, evolution, "url", "--global")).stdout.strip()
    assert global_url == f"{PUBLIC_URL}/webhooks/evolution?token={global_token(WEBHOOK_SECRET)}"


async def test_with_only_a_jwt_key_evolution_gets_the_instances_jwt_key(
    database_url: str, evolution: FakeEvolution, tenants: list[Any]
) -> None:
    result = await cli(
        database_url, evolution, "set", "gamma", WEBHOOK_SECRET="", WEBHOOK_JWT_KEY=JWT_KEY
    )
    assert result.returncode == 0, result.stderr
    assert evolution.webhooks["gamma"]["headers"] == {
        "X-Webhook-Instance": "gamma",
        "jwt_key": instance_jwt_key(JWT_KEY, "gamma"),
    }


async def test_evolution_1_8_and_old_v2_get_the_credentials_in_the_url(
    database_url: str, evolution: FakeEvolution, tenants: list[Any]
) -> None:
    token = instance_secret(WEBHOOK_SECRET, "gamma")
    evolution.api_version = 1
    assert (await cli(database_url, evolution, "set", "gamma")).returncode == 0
    assert evolution.webhooks["gamma"] == {
        "enabled": True,
        "url": f"{PUBLIC_URL}/webhooks/evolution?instance=gamma&token={token}",
        "webhook_by_events": False,
        "webhook_base64": True,
        "events": [e for e in EVENTS if e != "MESSAGES_EDITED"],  # 1.8 does not know it
    }
    assert (await cli(database_url, evolution, "check", "gamma")).returncode == 0

    # Evolution 2.1 keeps no headers: check says so, --credentials-in-url is the way.
    evolution.api_version = 2
    evolution.keeps_webhook_headers = False
    await cli(database_url, evolution, "set", "gamma")
    dropped = await cli(database_url, evolution, "check", "gamma")
    assert dropped.returncode == 1
    assert "the X-Webhook-Instance header is missing" in dropped.stdout
    assert token not in dropped.stdout
    assert (
        await cli(database_url, evolution, "set", "gamma", "--credentials-in-url")
    ).returncode == 0
    assert (
        await cli(database_url, evolution, "check", "gamma", "--credentials-in-url")
    ).returncode == 0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("set", "gamma"), {"PUBLIC_URL": ""}, "PUBLIC_URL is not set"),
        (("url", "--global"), {"WEBHOOK_SECRET": ""}, "WEBHOOK_SECRET is not set"),
        (("set", "gamma"), {"WEBHOOK_SECRET": ""}, "neither WEBHOOK_SECRET nor WEBHOOK_JWT_KEY"),
        (("check", "gamma", "--all"), {}, "name one INSTANCE, or pass --all"),
        (("set", "nope"), {}, "no tenant has the instance 'nope'"),
    ],
)
async def test_operator_mistakes_get_a_clear_message(
    database_url: str,
    evolution: FakeEvolution,
    tenants: list[Any],
    args: tuple[str, ...],
    env: dict[str, str],
    message: str,
) -> None:
    result = await cli(database_url, evolution, *args, **env)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert evolution.webhooks == {}
