"""Where ``/metrics`` is served, and to whom.

- ``METRICS_PORT`` set: on its own listener (``METRICS_HOST``, default 127.0.0.1), in every
  process — the API's and the worker's — and no longer on the public port. This is how a worker
  (which has no HTTP API) is scraped, and how a private network scrapes an API whose public port
  is on the internet.
- Else on the API's port, at ``/metrics``: open in development; in production only with
  ``METRICS_TOKEN`` (``Authorization: Bearer <token>``), otherwise 404.
- ``METRICS_TOKEN`` also protects the separate listener when set.

Every process serving metrics also reads the queue and summary gauges from the database at
scrape time (:class:`~intellizap.observability.database.DatabaseCollector`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from intellizap.observability.database import DatabaseCollector
from intellizap.settings import Settings

_WsgiStart = Callable[[str, list[tuple[str, str]]], Any]


def _token(settings: Settings) -> str | None:
    return settings.metrics_token.get_secret_value() if settings.metrics_token else None


def authorized(settings: Settings, authorization: str | None) -> bool:
    """The request may read the metrics (constant-time comparison of the bearer token)."""
    token = _token(settings)
    if token is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def served_on_public_port(settings: Settings) -> bool:
    if settings.metrics_port is not None:
        return False
    return not settings.is_production or settings.metrics_token is not None


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics`` on the API's port (see the module for when it answers)."""
    settings: Settings = request.app.state.settings
    if not served_on_public_port(settings):
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    if not authorized(settings, request.headers.get("authorization")):
        return JSONResponse(
            {"detail": "send METRICS_TOKEN as Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    # The database gauges are read with a blocking driver: off the event loop.
    body = await asyncio.to_thread(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _wsgi_app(settings: Settings) -> Callable[[dict[str, Any], _WsgiStart], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: _WsgiStart) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "/") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"metrics are at /metrics\n"]
        if not authorized(settings, environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")]
            )
            return [b"send METRICS_TOKEN as Authorization: Bearer <token>\n"]
        body = generate_latest(REGISTRY)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [body]

    return app


class MetricsPortInUse(OSError):
    """``METRICS_PORT`` could not be bound."""


@contextlib.contextmanager
def database_gauges(settings: Settings, url: str, queues: Iterable[str] = ()) -> Iterator[None]:
    """The database collector registered for as long as the process serves metrics."""
    collector = DatabaseCollector(
        url,
        queues=queues,
        worker_timeout=settings.stalled_job_seconds,
        connect_timeout=settings.database_connect_timeout,
    )
    REGISTRY.register(collector)
    try:
        yield
    finally:
        REGISTRY.unregister(collector)
        collector.close()


@contextlib.contextmanager
def separate_listener(settings: Settings) -> Iterator[WSGIServer | None]:
    """The ``METRICS_PORT`` listener, when configured (None otherwise)."""
    if settings.metrics_port is None:
        yield None
        return
    try:
        server = make_server(
            settings.metrics_host,
            settings.metrics_port,
            _wsgi_app(settings),
            ThreadingWSGIServer,
            handler_class=_SilentHandler,
        )
    except OSError as exc:
        raise MetricsPortInUse(
            f"METRICS_PORT={settings.metrics_port} on METRICS_HOST={settings.metrics_host} cannot"
            f" be used ({exc.strerror or exc}): choose a free port"
        ) from exc
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def metrics_server(settings: Settings, url: str, queues: Iterable[str] = ()) -> Iterator[None]:
    """What a process without the HTTP API (the worker) does for metrics: with
    ``METRICS_PORT``, serve them there, database gauges included; without it, nothing."""
    if settings.metrics_port is None:
        yield
        return
    with separate_listener(settings), database_gauges(settings, url, queues):
        yield
