"""``POST /webhooks/evolution``: thin HTTP over :mod:`intellizap.ingest.service`."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from intellizap.evolution.payloads import Envelope, parse_envelope, parse_events
from intellizap.ingest.auth import HOW_TO_AUTHENTICATE, Transport, WebhookAuth
from intellizap.ingest.bodies import BodyBudget, Hold, declared_size, read_body
from intellizap.ingest.errors import Flooded, MalformedBody, NotAuthenticated
from intellizap.ingest.flood import FloodGuard
from intellizap.ingest.metrics import WEBHOOK_OK
from intellizap.ingest.service import IngestService
from intellizap.ingest.subscription import PATH
from intellizap.logging import get_logger
from intellizap.tenants.directory import TenantDirectory, TenantInfo

log = get_logger(__name__)

__all__ = ["PATH", "WebhookDependencies", "evolution_webhook", "routes"]


class WebhookDependencies:
    """What the endpoint needs, built once at start-up (see ``intellizap.app``)."""

    def __init__(
        self,
        *,
        auth: WebhookAuth,
        flood: FloodGuard,
        directory: TenantDirectory,
        service: IngestService,
        bodies: BodyBudget,
        max_bytes: int,
        unauthenticated_read_seconds: float,
    ) -> None:
        self.auth = auth
        self.flood = flood
        self.directory = directory
        self.service = service
        self.bodies = bodies
        self.max_bytes = max_bytes
        self.unauthenticated_read_seconds = unauthenticated_read_seconds
        self.on_shared_secret: set[str] = set()
        """Instances seen with the legacy shared secret (grace period), each logged once."""


def _query(request: Request) -> dict[str, str]:
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return {}
    # Evolution appends the by-events suffix to the URL as a plain string, so `…?token=T` is
    # called as `…?token=T/messages-upsert`. Our values never hold a literal "/" (instance
    # names are percent-encoded, tokens are base64url): everything from the first one is the
    # suffix.
    return dict(parse_qsl(raw.split(b"/", 1)[0].decode("latin-1")))


async def evolution_webhook(request: Request) -> Response:
    """Receive one Evolution event (single-URL or "webhook by events" mode).

    200: stored, duplicate or deliberately ignored. 400/422: malformed (Evolution does not
    retry). 401: bad credentials, or credentials of another instance. 408: an unauthenticated body
    too slow. 413: too large. 429: flood. 503: too many bodies in memory, or database unreachable
    (Evolution retries; nothing is acknowledged that was not committed).
    """
    deps: WebhookDependencies = request.app.state.webhook
    received_at = datetime.now(UTC)
    transport = deps.auth.transport(request.headers, _query(request))
    size = declared_size(request, deps.max_bytes)
    unauthenticated = not transport.authenticated
    async with deps.bodies.hold(
        size, instance=transport.instance, unauthenticated=unauthenticated
    ) as hold:
        deadline = deps.unauthenticated_read_seconds if unauthenticated else None
        body = await read_body(request, deps.max_bytes, deadline_seconds=deadline)
        return await _handle(deps, transport, hold, body, received_at)


async def _handle(
    deps: WebhookDependencies,
    transport: Transport,
    hold: Hold,
    body: bytes | bytearray,
    received_at: datetime,
) -> Response:
    if transport.authenticated:
        envelope = _parse(body)
        deps.auth.check_instance(transport, envelope.instance)
        tenant = await deps.directory.get(envelope.instance)
        if transport.shared_secret:
            _note_shared_secret(deps, envelope.instance)
    else:
        envelope, tenant = await _authenticate_by_body(deps, hold, body)
    if not deps.flood.allow(envelope.instance):
        raise Flooded(f"too many webhooks for instance {envelope.instance!r}; slow down")
    events = parse_events(envelope, received_at)
    report = await deps.service.ingest(envelope, tenant, events)
    WEBHOOK_OK.inc()
    return Response(
        orjson.dumps({"status": "ok", "events": report.outcomes}), media_type="application/json"
    )


async def _authenticate_by_body(
    deps: WebhookDependencies, hold: Hold, body: bytes | bytearray
) -> tuple[Envelope, TenantInfo | None]:
    """The body's ``apikey`` method. The raw bytes are scanned first: a body is parsed only
    when it names an instance and a key that match, so unauthenticated callers learn nothing
    about what we accept and cost no parsing."""
    auth = deps.auth
    if auth.nothing_configured:
        envelope = _parse(body)
        tenant = await deps.directory.get(envelope.instance)
        token = tenant.evolution_token if tenant else None
        if auth.required_for(token) and not auth.apikey_ok(envelope.apikey, token):
            raise _not_authenticated()
        return envelope, tenant
    for instance, apikey in auth.apikey_candidates(body):
        tenant = await deps.directory.get(instance)
        if auth.apikey_ok(apikey, tenant.evolution_token if tenant else None):
            break
    else:
        raise _not_authenticated()
    await deps.bodies.authenticated(hold)
    envelope = _parse(body)
    tenant = await deps.directory.get(envelope.instance)
    if not auth.apikey_ok(envelope.apikey, tenant.evolution_token if tenant else None):
        raise _not_authenticated()
    return envelope, tenant


def _parse(body: bytes | bytearray) -> Envelope:
    try:
        return parse_envelope(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"body is not valid JSON: {exc.msg}") from exc


def _note_shared_secret(deps: WebhookDependencies, instance: str) -> None:
    if instance not in deps.on_shared_secret:
        deps.on_shared_secret.add(instance)
        log.warning(
            "webhook authenticated with the legacy shared secret (grace period): run "
            "`intellizap webhook set` for this instance",
            instancia=instance,
        )


def _not_authenticated() -> NotAuthenticated:
    return NotAuthenticated(f"missing or invalid webhook credentials: {HOW_TO_AUTHENTICATE}")


#: Plain Starlette routes, not FastAPI's: this is the hot path, and FastAPI's dependency
#: injection and request wrapping cost more CPU than the whole ingest (bench/ingest.py). The
#: application serves them through ``fast_lane`` ahead of its middleware; the routes remain for
#: everything else (a GET is a 405). Errors are mapped to HTTP by the application's handlers.
routes = [
    Route(PATH, evolution_webhook, methods=["POST"]),
    # Evolution's "webhook by events" mode appends the event: /messages-upsert (or //… when the
    # configured URL ends with a slash).
    Route(PATH + "/{event_suffix:path}", evolution_webhook, methods=["POST"]),
]
