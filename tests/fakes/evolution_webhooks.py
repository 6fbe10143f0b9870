"""Evolution's webhook configuration endpoints for the fake (reference §1.1), mixed into
:class:`tests.fakes.evolution.FakeEvolution`.

Awkward like the real one: a v2 body must be wrapped in ``webhook`` and its events are checked
against Evolution's list (400 otherwise); ``enabled: false`` stores no events, ``enabled: true``
with none stores all; v2 older than 2.2 drops the headers (``keeps_webhook_headers = False``);
v1 (``api_version = 1``) takes flat snake_case bodies and knows fewer events; an instance's own
token works on that instance's routes only (``instance_tokens``).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import uuid
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes._server import Handler

#: EventController.events of 2.3.6, and v1's webhookSchema list.
WEBHOOK_EVENTS_V2 = frozenset(
    [
        "APPLICATION_STARTUP",
        "QRCODE_UPDATED",
        "MESSAGES_SET",
        "MESSAGES_UPSERT",
        "MESSAGES_EDITED",
        "MESSAGES_UPDATE",
        "MESSAGES_DELETE",
        "SEND_MESSAGE",
        "SEND_MESSAGE_UPDATE",
        "CONTACTS_SET",
        "CONTACTS_UPSERT",
        "CONTACTS_UPDATE",
        "PRESENCE_UPDATE",
        "CHATS_SET",
        "CHATS_UPSERT",
        "CHATS_UPDATE",
        "CHATS_DELETE",
        "GROUPS_UPSERT",
        "GROUP_UPDATE",
        "GROUP_PARTICIPANTS_UPDATE",
        "CONNECTION_UPDATE",
        "LABELS_EDIT",
        "LABELS_ASSOCIATION",
        "CALL",
        "TYPEBOT_START",
        "TYPEBOT_CHANGE_STATUS",
        "REMOVE_INSTANCE",
        "LOGOUT_INSTANCE",
        "INSTANCE_CREATE",
        "INSTANCE_DELETE",
        "STATUS_INSTANCE",
    ]
)
WEBHOOK_EVENTS_V1 = (
    WEBHOOK_EVENTS_V2
    - {"MESSAGES_EDITED", "SEND_MESSAGE_UPDATE", "REMOVE_INSTANCE", "LOGOUT_INSTANCE"}
    - {"INSTANCE_CREATE", "INSTANCE_DELETE", "STATUS_INSTANCE"}
) | {"NEW_JWT_TOKEN", "CHAMA_AI_ACTION"}


def _webhook_error(settings: Any, version: int) -> str | None:
    """Evolution's schema check of a webhook body: the first message, or None."""
    if not isinstance(settings, dict):
        return 'instance requires property "webhook"' if version == 2 else "invalid body"
    url = settings.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://", url):
        return 'instance requires property "url"'
    if version == 2 and not isinstance(settings.get("enabled"), bool):
        return 'instance requires property "enabled"'
    allowed = WEBHOOK_EVENTS_V2 if version == 2 else WEBHOOK_EVENTS_V1
    events = settings.get("events", [])
    if not isinstance(events, list):
        return "events is not of a type(s) array"
    for event in events:
        if event not in allowed:
            return f"events[{events.index(event)}] is not one of enum values"
    return None


class WebhookEndpoints:
    """Mixed into FakeEvolution: ``/webhook/set`` stores, ``/webhook/find`` returns the row."""

    lock: Any
    api_version: int
    keeps_webhook_headers: bool
    instance_tokens: dict[str, str]
    webhooks: dict[str, dict[str, Any]]

    def request_key(self, request: Request) -> str | None:
        raise NotImplementedError  # FakeEvolution's

    def webhook_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/webhook/set/{instance}", self._set_webhook),
            ("GET", "/webhook/find/{instance}", self._find_webhook),
        ]

    def _token_refused(self, request: Request) -> Response | None:
        """An instance token works only on its own instance's routes (auth.guard.ts)."""
        owner = self.instance_tokens.get(self.request_key(request) or "")
        if owner is not None and owner != request.path_params["instance"]:
            return _error(401, "Unauthorized")
        return None

    async def _set_webhook(self, request: Request, raw: bytes) -> Response:
        refused = self._token_refused(request)
        if refused is not None:
            return refused
        body = _json_object(raw)
        instance = request.path_params["instance"]
        if self.api_version == 2:
            settings = body.get("webhook")
            problem = _webhook_error(settings, 2)
            if problem:
                return _error(400, [problem])
            enabled = settings["enabled"]
            events = settings.get("events") or sorted(WEBHOOK_EVENTS_V2)
            row = {
                "id": secrets.token_hex(12),
                "url": settings["url"],
                "headers": dict(settings.get("headers") or {})
                if self.keeps_webhook_headers
                else None,
                "enabled": enabled,
                "events": events if enabled else [],
                "webhookByEvents": bool(settings.get("byEvents", False)),
                "webhookBase64": bool(settings.get("base64", False)),
                "instanceId": str(uuid.uuid4()),
            }
        else:
            problem = _webhook_error(body, 1)
            if problem:
                return _error(400, [problem])
            enabled = body.get("enabled", True)
            row = {
                "enabled": enabled,
                "url": body["url"] if enabled else "",
                "webhook_by_events": bool(body.get("webhook_by_events", False)),
                "webhook_base64": bool(body.get("webhook_base64", False)),
                "events": body.get("events", []) if enabled else [],
            }
        with self.lock:
            self.webhooks[instance] = row
        return JSONResponse({"webhook": {"instanceName": instance, "webhook": row}}, 201)

    async def _find_webhook(self, request: Request, raw: bytes) -> Response:
        refused = self._token_refused(request)
        if refused is not None:
            return refused
        with self.lock:
            row = copy.deepcopy(self.webhooks.get(request.path_params["instance"]))
        return JSONResponse(row, 200)


def _error(status: int, message: Any) -> JSONResponse:
    body = {"status": status, "error": HTTPStatus(status).phrase, "response": {"message": message}}
    return JSONResponse(body, status)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
