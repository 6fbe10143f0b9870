"""The webhook's way in: ``POST /webhooks/evolution[/…]`` straight to its endpoint, ahead of
FastAPI's telemetry check, middleware and router.

The webhook uses nothing of them (no dependencies, no body model, no CORS: Evolution sends no
``Origin``), yet they cost over a tenth of its CPU — a per-request OpenTelemetry lookup, six
middleware layers and a walk over every route of the frontend API before the webhook's
(bench/ingest.py, ``--profile``). The application (``intellizap.app``) hands webhook requests to
this lane before any of them: they go directly to
:func:`~intellizap.ingest.endpoints.evolution_webhook`; everything else goes through the
application unchanged. A refusal is still turned into its HTTP answer
by the application's own exception handlers, so that mapping stays in one place
(``intellizap.app``); anything unexpected propagates to the server, which answers 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from intellizap.ingest.endpoints import PATH, evolution_webhook

_Handler = Callable[[Request, Exception], Awaitable[Response]]


def is_webhook(scope: Scope) -> bool:
    """A POST to the webhook path or below it (Evolution's "webhook by events" suffixes)."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    return path.startswith(PATH) and (len(path) == len(PATH) or path[len(PATH)] == "/")


class WebhookFastLane:
    """Serves one webhook request for ``application`` (see :func:`is_webhook`)."""

    def __init__(self, application: Starlette) -> None:
        self._application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self._application  # request.app.state, as through the router
        request = Request(scope, receive)
        try:
            response = await evolution_webhook(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> _Handler | None:
        handlers = self._application.exception_handlers
        for kind in type(exc).__mro__:
            handler = handlers.get(kind)
            if handler is not None:
                return cast(_Handler, handler)
        return None
