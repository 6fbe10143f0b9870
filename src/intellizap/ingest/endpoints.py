"""``POST /webhooks/evolution``: thin HTTP over :mod:`intellizap.ingest.service`."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from intellizap.evolution.payloads import PayloadError, parse_envelope, parse_events
from intellizap.ingest.auth import WebhookAuth
from intellizap.ingest.errors import BodyTooLarge, Flooded, MalformedBody, NotAuthenticated
from intellizap.ingest.flood import FloodGuard
from intellizap.ingest.metrics import WEBHOOK_OK
from intellizap.ingest.service import IngestService
from intellizap.logging import get_logger
from intellizap.tenants.directory import TenantDirectory

log = get_logger(__name__)


class WebhookDependencies:
    """What the endpoint needs, built once at start-up (see ``intellizap.app``)."""

    def __init__(
        self,
        *,
        auth: WebhookAuth,
        flood: FloodGuard,
        directory: TenantDirectory,
        service: IngestService,
        max_bytes: int,
    ) -> None:
        self.auth = auth
        self.flood = flood
        self.directory = directory
        self.service = service
        self.max_bytes = max_bytes


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _query_token(request: Request) -> dict[str, str]:
    # Evolution appends the by-events suffix to the URL as a plain string, so a global webhook
    # URL `…/evolution?token=SECRET` is called as `…/evolution?token=SECRET/messages-upsert`.
    token = request.query_params.get("token")
    return {"token": token.split("/", 1)[0]} if token else {}


async def evolution_webhook(request: Request) -> Response:
    """Receive one Evolution event (single-URL or "webhook by events" mode).

    200: stored, duplicate or deliberately ignored. 400/422: malformed (Evolution does not
    retry). 401: bad credentials. 413: too large. 429: flood. 503: database unreachable (Evolution
    retries; nothing is acknowledged that was not committed).
    """
    deps: WebhookDependencies = request.app.state.webhook
    received_at = datetime.now(UTC)
    body = await _read_body(request, deps.max_bytes)
    transport_ok = deps.auth.transport_ok(request.headers, _query_token(request))
    try:
        envelope = parse_envelope(orjson.loads(body))
    except (orjson.JSONDecodeError, PayloadError) as exc:
        if not transport_ok and deps.auth.required_for(None):
            # Unauthenticated callers learn nothing about what we accept.
            raise _not_authenticated() from exc
        if isinstance(exc, orjson.JSONDecodeError):
            raise MalformedBody(f"body is not valid JSON: {exc.msg}") from exc
        raise
    tenant = await deps.directory.get(envelope.instance)
    if not transport_ok:
        token = tenant.evolution_token if tenant else None
        if not deps.auth.apikey_ok(envelope.apikey, token) and deps.auth.required_for(token):
            raise _not_authenticated()
    if not deps.flood.allow(envelope.instance):
        raise Flooded(f"too many webhooks for instance {envelope.instance!r}; slow down")
    events = parse_events(envelope, received_at)
    report = await deps.service.ingest(envelope, tenant, events)
    WEBHOOK_OK.inc()
    return Response(
        orjson.dumps({"status": "ok", "events": report.outcomes}), media_type="application/json"
    )


def _not_authenticated() -> NotAuthenticated:
    return NotAuthenticated(
        "missing or invalid webhook credentials: send the X-Webhook-Secret header (or ?token=), "
        "a Bearer JWT signed with WEBHOOK_JWT_KEY, or the instance's apikey in the body"
    )


#: Plain Starlette routes, not FastAPI's: this is the hot path, and FastAPI's dependency
#: injection and request wrapping cost more CPU than the whole ingest (bench/ingest.py). The
#: application serves them through ``fast_lane`` ahead of its middleware; the routes remain for
#: everything else (a GET is a 405). Errors are mapped to HTTP by the application's handlers.
PATH = "/webhooks/evolution"
routes = [
    Route(PATH, evolution_webhook, methods=["POST"]),
    # Evolution's "webhook by events" mode appends the event: /messages-upsert (or //… when the
    # configured URL ends with a slash).
    Route(PATH + "/{event_suffix:path}", evolution_webhook, methods=["POST"]),
]
