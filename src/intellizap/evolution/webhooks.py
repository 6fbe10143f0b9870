"""An instance's webhook configuration in Evolution: what ``POST /webhook/set/{instance}`` takes
and what ``GET /webhook/find/{instance}`` returns (reference §1.1). Pure; the HTTP calls are
:meth:`EvolutionClient.set_webhook` and :meth:`EvolutionClient.find_webhook`.

- v2 (2.1.1 and later): the settings wrapped in ``webhook``, camelCase, with ``headers``
  (sent verbatim on every delivery since 2.2.0; a ``jwt_key`` header becomes a Bearer JWT on 2.3).
- v1 (1.8): flat snake_case, and no headers at all: credentials can only travel in the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: Event names Evolution 1.8 rejects (its list predates them).
V1_UNKNOWN_EVENTS = frozenset({"MESSAGES_EDITED", "SEND_MESSAGE_UPDATE"})


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: tuple[str, ...] = ()
    enabled: bool = True
    by_events: bool = False
    base64: bool = True


class HeadersUnsupported(ValueError):
    """Evolution 1.8 cannot send custom headers."""


def set_body(config: WebhookConfig, api_version: Literal[1, 2]) -> dict[str, Any]:
    """The JSON body of ``POST /webhook/set/{instance}`` for that Evolution version."""
    if api_version == 1:
        if config.headers:
            raise HeadersUnsupported(
                "Evolution 1.8 sends no webhook headers: the credentials must be in the URL"
            )
        return {
            "url": config.url,
            "enabled": config.enabled,
            "webhook_by_events": config.by_events,
            "webhook_base64": config.base64,
            "events": [event for event in config.events if event not in V1_UNKNOWN_EVENTS],
        }
    return {
        "webhook": {
            "enabled": config.enabled,
            "url": config.url,
            "headers": dict(config.headers),
            "byEvents": config.by_events,
            "base64": config.base64,
            "events": list(config.events),
        }
    }


def parse_found(body: Any) -> WebhookConfig | None:
    """What ``/webhook/find`` returned (v2 row or v1 object), or None when the instance has no
    webhook (Evolution answers ``null``, or an object without a URL)."""
    if isinstance(body, dict) and isinstance(body.get("webhook"), dict):
        body = body["webhook"]
    if not isinstance(body, dict):
        return None
    url = body.get("url")
    if not isinstance(url, str) or not url:
        return None
    headers = body.get("headers")
    events = body.get("events")
    return WebhookConfig(
        url=url,
        headers={
            str(name): value
            for name, value in (headers.items() if isinstance(headers, dict) else ())
            if isinstance(value, str)
        },
        events=tuple(e for e in events if isinstance(e, str)) if isinstance(events, list) else (),
        enabled=body.get("enabled") is True,
        by_events=_first_flag(body, "webhookByEvents", "webhook_by_events", "byEvents"),
        base64=_first_flag(body, "webhookBase64", "webhook_base64", "base64"),
    )


def _first_flag(body: dict[str, Any], *names: str) -> bool:
    for name in names:
        if name in body:
            return body[name] is True
    return False
