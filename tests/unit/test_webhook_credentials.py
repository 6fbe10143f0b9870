"""Per-instance webhook credentials and Evolution's webhook configuration: pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from intellizap.evolution.webhooks import (
    HeadersUnsupported,
    WebhookConfig,
    parse_found,
    set_body,
)
from intellizap.ingest.credentials import (
    decode_instance,
    encode_instance,
    global_token,
    instance_jwt_key,
    instance_secret,
)
from intellizap.ingest.subscription import (
    EVENTS,
    NotConfigured,
    differences,
    global_webhook_url,
    instance_webhook,
    redact_url,
)
from intellizap.settings import Settings

MASTER = "master-secret-0123456789abcdef"


def settings(**values: Any) -> Settings:
    defaults: dict[str, Any] = {"public_url": "https://api.example.com/", "webhook_secret": MASTER}
    return Settings(_env_file=None, **{**defaults, **values})  # type: ignore[call-arg]


def test_each_instance_gets_its_own_secret_and_jwt_key() -> None:
    instances = ["acme-support", "acme-support ", "Acme-support", "beta", "", "São/João"]
    secrets = {instance_secret(MASTER, name) for name in instances}
    keys = {instance_jwt_key(MASTER, name) for name in instances}
    assert len(secrets) == len(keys) == len(instances)
    assert not secrets & keys  # a secret is never another instance's (or its own) JWT key
    assert global_token(MASTER) not in secrets | keys
    # Deterministic (nothing is stored), bound to the master secret, and no master inside.
    assert instance_secret(MASTER, "beta") == instance_secret(MASTER, "beta")
    assert instance_secret(MASTER + "x", "beta") != instance_secret(MASTER, "beta")
    assert all(MASTER not in value and len(value) == 43 for value in secrets)


def test_credentials_are_safe_in_headers_and_urls() -> None:
    for value in (
        instance_secret(MASTER, "a"),
        instance_jwt_key(MASTER, "a"),
        global_token(MASTER),
    ):
        assert value.isascii()
        assert not set(value) & set("/+=?&% ")


@pytest.mark.parametrize("name", ["acme-support", "Loja São João", "a/b", "100%", "x+y"])
def test_instance_names_round_trip_through_the_header(name: str) -> None:
    encoded = encode_instance(name)
    assert encoded.isascii()
    assert "/" not in encoded
    assert decode_instance(encoded) == name


def test_v2_webhook_carries_the_instance_and_its_secret_in_headers() -> None:
    config = instance_webhook(settings(), "acme-support")
    assert config == WebhookConfig(
        url="https://api.example.com/webhooks/evolution",
        headers={
            "X-Webhook-Instance": "acme-support",
            "X-Webhook-Secret": instance_secret(MASTER, "acme-support"),
        },
        events=EVENTS,
    )
    assert set_body(config, 2) == {
        "webhook": {
            "enabled": True,
            "url": config.url,
            "headers": config.headers,
            "byEvents": False,
            "base64": True,
            "events": list(EVENTS),
        }
    }


def test_v1_webhook_carries_the_credentials_in_the_url_token_last() -> None:
    config = instance_webhook(settings(evolution_api_version=1), "Loja 1/2")
    token = instance_secret(MASTER, "Loja 1/2")
    assert (
        config.url
        == f"https://api.example.com/webhooks/evolution?instance=Loja+1%2F2&token={token}"
    )
    assert config.headers == {}
    body = set_body(config, 1)
    assert body["url"] == config.url
    assert "MESSAGES_EDITED" not in body["events"]
    with pytest.raises(HeadersUnsupported):
        set_body(instance_webhook(settings(), "x"), 1)


def test_a_jwt_only_configuration_sends_the_instances_jwt_key() -> None:
    config = instance_webhook(settings(webhook_secret=None, webhook_jwt_key=MASTER), "beta")
    assert config.headers == {
        "X-Webhook-Instance": "beta",
        "jwt_key": instance_jwt_key(MASTER, "beta"),
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"public_url": None}, "PUBLIC_URL is not set"),
        ({"webhook_secret": None}, "neither WEBHOOK_SECRET nor WEBHOOK_JWT_KEY"),
        (
            {"webhook_secret": None, "webhook_jwt_key": MASTER, "evolution_api_version": 1},
            "WEBHOOK_SECRET",
        ),
    ],
)
def test_what_is_missing_is_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(NotConfigured, match=message):
        instance_webhook(settings(**values), "beta")


def test_the_global_webhook_url_has_the_global_token() -> None:
    assert global_webhook_url(settings()) == (
        f"https://api.example.com/webhooks/evolution?token={global_token(MASTER)}"
    )
    with pytest.raises(NotConfigured, match="WEBHOOK_SECRET"):
        global_webhook_url(settings(webhook_secret=None, webhook_jwt_key=MASTER))


def test_differences_name_what_is_wrong_and_never_a_secret() -> None:
    expected = instance_webhook(settings(), "acme-support")
    assert differences(expected, expected) == []
    assert differences(expected, None) == ["no webhook is configured"]
    stale = WebhookConfig(
        url="https://old.example.com/webhooks/evolution?token=the-old-shared-secret",
        headers={"x-webhook-secret": "the-old-shared-secret"},
        events=("MESSAGES_UPSERT",),
        enabled=False,
    )
    problems = differences(expected, stale)
    assert problems == [
        "the webhook is disabled",
        "the URL is https://old.example.com/webhooks/evolution?token=…, not "
        "https://api.example.com/webhooks/evolution",
        "the X-Webhook-Instance header is missing",
        "the X-Webhook-Secret header is not this instance's",
        "events not delivered: " + ", ".join(EVENTS[1:]),
    ]
    assert not any("the-old-shared-secret" in p or MASTER in p for p in problems)
    # Evolution stored "all events" (enabled with an empty list).
    everything = WebhookConfig(url=expected.url, headers=expected.headers, events=())
    assert differences(expected, everything) == []


def test_redact_url_hides_only_the_token() -> None:
    assert redact_url("https://a/b?instance=x&token=s3cret/messages-upsert") == (
        "https://a/b?instance=x&token=…/messages-upsert"
    )


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (None, None),
        ({}, None),
        ({"url": ""}, None),
        (
            {
                "url": "https://a/w",
                "headers": {"X-Webhook-Instance": "i", "n": 1},
                "enabled": True,
                "events": ["MESSAGES_UPSERT", 7],
                "webhookByEvents": True,
                "webhookBase64": False,
            },
            WebhookConfig(
                "https://a/w", {"X-Webhook-Instance": "i"}, ("MESSAGES_UPSERT",), True, True, False
            ),
        ),
        (
            {
                "enabled": True,
                "url": "https://a/w?token=t",
                "webhook_by_events": False,
                "webhook_base64": True,
                "events": [],
            },
            WebhookConfig("https://a/w?token=t", {}, (), True, False, True),
        ),
        (
            {"webhook": {"url": "https://a/w", "headers": None}},
            WebhookConfig("https://a/w", {}, (), False, False, False),
        ),
    ],
    ids=["null", "empty", "no-url", "v2-row", "v1", "wrapped"],
)
def test_what_evolution_returns_is_read_in_every_shape(found: Any, expected: Any) -> None:
    assert parse_found(found) == expected


def test_production_refuses_a_new_secret_equal_to_the_old_one() -> None:
    production: dict[str, Any] = {
        "env": "production",
        "database_url": "postgresql://postgres.abc:pw-123456@aws-0-sa-east-1.pooler.supabase.com:5432/postgres",
        "webhook_secret": MASTER,
    }
    assert settings(**production).production_problems() == []
    problems = settings(**production, webhook_legacy_secret=MASTER).production_problems()
    assert len(problems) == 1
    assert "WEBHOOK_SECRET equals WEBHOOK_LEGACY_SECRET" in problems[0]
    assert MASTER not in problems[0]
