"""What Evolution must be configured with to deliver an instance's events to us, and how a
stored configuration differs from it (``intellizap webhook url|set|check``). Pure.

Evolution v2 gets the credentials in headers (``X-Webhook-Instance`` and ``X-Webhook-Secret``, or
``jwt_key`` when only ``WEBHOOK_JWT_KEY`` is configured); Evolution 1.8, which sends no headers,
and v2 older than 2.2 (``--credentials-in-url``) get them in the URL:
``…/webhooks/evolution?instance=X&token=…``. The global webhook's URL carries the global token.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from intellizap.evolution.webhooks import V1_UNKNOWN_EVENTS, WebhookConfig
from intellizap.ingest.credentials import (
    INSTANCE_HEADER,
    INSTANCE_QUERY,
    SECRET_HEADER,
    TOKEN_QUERY,
    encode_instance,
    global_token,
    instance_jwt_key,
    instance_secret,
)
from intellizap.settings import Settings

PATH = "/webhooks/evolution"
#: What the ingest handles (reference §1.3). GROUP_UPDATE is left out: Evolution never delivers
#: it (the event is emitted under another name), and group names come from the group sync.
EVENTS = (
    "MESSAGES_UPSERT",
    "MESSAGES_EDITED",
    "MESSAGES_DELETE",
    "MESSAGES_UPDATE",
    "SEND_MESSAGE",
    "GROUPS_UPSERT",
    "GROUP_PARTICIPANTS_UPDATE",
    "CONNECTION_UPDATE",
)
JWT_KEY_HEADER = "jwt_key"
_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&/]*")


class NotConfigured(ValueError):
    """A setting the webhook configuration needs is missing; the message says which."""


def _base_url(settings: Settings) -> str:
    if settings.public_url is None:
        raise NotConfigured(
            "PUBLIC_URL is not set: set it to this service's URL as Evolution reaches it, "
            "e.g. PUBLIC_URL=https://intellizap.example.com"
        )
    return settings.public_url + PATH


def instance_webhook(
    settings: Settings, instance: str, *, credentials_in_url: bool = False
) -> WebhookConfig:
    """The webhook Evolution must have for ``instance``."""
    url = _base_url(settings)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    jwt_key = settings.webhook_jwt_key.get_secret_value() if settings.webhook_jwt_key else None
    if credentials_in_url or settings.evolution_api_version == 1:
        if secret is None:
            raise NotConfigured(
                "WEBHOOK_SECRET is not set: credentials in the URL (Evolution 1.8, or "
                "--credentials-in-url) are derived from it"
            )
        # The token last: Evolution's by-events mode appends "/event" to the URL string.
        query = urlencode(
            {INSTANCE_QUERY: instance, TOKEN_QUERY: instance_secret(secret, instance)}
        )
        if settings.evolution_api_version == 1:
            events = tuple(event for event in EVENTS if event not in V1_UNKNOWN_EVENTS)
            return WebhookConfig(url=f"{url}?{query}", events=events)
        return WebhookConfig(url=f"{url}?{query}", events=EVENTS)
    headers = {INSTANCE_HEADER: encode_instance(instance)}
    if secret is not None:
        headers[SECRET_HEADER] = instance_secret(secret, instance)
    elif jwt_key is not None:
        headers[JWT_KEY_HEADER] = instance_jwt_key(jwt_key, instance)
    else:
        raise NotConfigured(
            "neither WEBHOOK_SECRET nor WEBHOOK_JWT_KEY is set: the instances' webhook "
            "credentials are derived from them"
        )
    return WebhookConfig(url=url, headers=headers, events=EVENTS)


def global_webhook_url(settings: Settings) -> str:
    """``WEBHOOK_GLOBAL_URL`` for Evolution's environment (operator only: never give it to a
    tenant — it is valid for every instance)."""
    url = _base_url(settings)
    if settings.webhook_secret is None:
        raise NotConfigured(
            "WEBHOOK_SECRET is not set: the global webhook's token is derived from it"
        )
    token = global_token(settings.webhook_secret.get_secret_value())
    return f"{url}?{urlencode({TOKEN_QUERY: token})}"


def redact_url(url: str) -> str:
    """``url`` with its ``token=`` value hidden (for messages and listings)."""
    return _TOKEN_IN_URL.sub(r"\1…", url)


def differences(expected: WebhookConfig, found: WebhookConfig | None) -> list[str]:
    """Why ``found`` will not deliver as ``expected`` would (empty: it is current). Never
    includes a secret."""
    if found is None:
        return ["no webhook is configured"]
    problems = []
    if not found.enabled:
        problems.append("the webhook is disabled")
    if found.url.rstrip("/") != expected.url.rstrip("/"):
        if redact_url(found.url) == redact_url(expected.url):
            problems.append("the URL's token is not this instance's")
        else:
            problems.append(f"the URL is {redact_url(found.url)}, not {redact_url(expected.url)}")
    stored = {name.lower(): value for name, value in found.headers.items()}
    for name, value in expected.headers.items():
        if name.lower() not in stored:
            problems.append(f"the {name} header is missing")
        elif stored[name.lower()] != value:
            problems.append(f"the {name} header is not this instance's")
    missing = [event for event in expected.events if event not in found.events]
    # Evolution stores every event when it was enabled with an empty list.
    if missing and found.events:
        problems.append(f"events not delivered: {', '.join(missing)}")
    return problems
