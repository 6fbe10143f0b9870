"""The FastAPI application: routers, start-up and shut-down, and the error → HTTP mapping."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import procrastinate
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from procrastinate.exceptions import ConnectorException
from starlette.types import Receive, Scope, Send

from intellizap import health
from intellizap.db import migrate
from intellizap.db.embedded import start_database
from intellizap.db.engine import Database, DatabaseUnavailable
from intellizap.evolution.payloads import PayloadError
from intellizap.frontend import endpoints as frontend
from intellizap.frontend.auth import SupabaseTokens
from intellizap.ingest import endpoints as webhook
from intellizap.ingest.auth import WebhookAuth
from intellizap.ingest.bodies import BodyBudget
from intellizap.ingest.errors import (
    BodyTimeout,
    BodyTooLarge,
    Flooded,
    MalformedBody,
    NotAuthenticated,
    Overloaded,
    WebhookRejected,
)
from intellizap.ingest.fast_lane import WebhookFastLane, is_webhook
from intellizap.ingest.flood import FloodGuard
from intellizap.ingest.metrics import WEBHOOKS
from intellizap.ingest.service import IngestService
from intellizap.ingest.writer import MessageWriter
from intellizap.llm import Llm
from intellizap.logging import configure_logging, get_logger
from intellizap.observability import server as metrics
from intellizap.settings import Settings, check_for_production, get_settings
from intellizap.task_modules import connect_queue, run_worker
from intellizap.tenants.directory import TenantDirectory

log = get_logger(__name__)

#: The one place where a refusal becomes a status code.
STATUS_CODES: dict[type[Exception], int] = {
    MalformedBody: 400,
    NotAuthenticated: 401,
    BodyTimeout: 408,
    BodyTooLarge: 413,
    PayloadError: 422,
    Flooded: 429,
    Overloaded: 503,
}


@dataclass(frozen=True, slots=True)
class Roles:
    """What this process runs besides the HTTP API."""

    migrate: bool = False
    """Apply migrations at start-up (all-in-one mode; replicas run ``intellizap migrate``)."""
    worker: bool = False
    """Run the job worker and periodic tasks in this process (all-in-one mode)."""


def _queues(queue: procrastinate.App) -> set[str]:
    """The queues of every task (always shown in the queue gauges, also when empty)."""
    return {task.queue for task in queue.tasks.values()}


class _Application(FastAPI):
    """FastAPI, with webhooks served ahead of it (see :mod:`intellizap.ingest.fast_lane`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._webhook_lane = WebhookFastLane(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_webhook(scope):
            await self._webhook_lane(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, roles: Roles | None = None) -> FastAPI:
    """Build the application. Nothing connects until start-up (the lifespan)."""
    settings = settings or get_settings()
    roles = roles or Roles()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        check_for_production(settings)
        configure_logging(
            json=settings.is_production, level=settings.log_level, secrets=settings.secret_values()
        )
        url, embedded = await asyncio.to_thread(start_database, settings)
        if roles.migrate or embedded is not None:
            await asyncio.to_thread(migrate.upgrade, url)
        database = Database(
            url,
            pool_size=settings.database_pool_size,
            connect_timeout=settings.database_connect_timeout,
        )
        directory = TenantDirectory(database, ttl=settings.tenant_cache_seconds)
        writer = MessageWriter(database, connect_timeout=settings.database_connect_timeout)
        writer.start()
        queue = connect_queue(url, pool_size=settings.job_queue_pool_size)
        await queue.open_async()
        worker: asyncio.Task[None] | None = None
        if roles.worker:
            worker = asyncio.create_task(
                run_worker(queue, settings, url),
                name="job-worker",
            )
        supabase_tokens = SupabaseTokens(settings)
        webhook_auth = WebhookAuth(settings)
        app.state.worker = worker
        app.state.settings = settings
        app.state.llm = Llm(settings.openai_base_url, max_wait=settings.llm_max_wait_seconds)
        app.state.database = database
        app.state.queue = queue
        app.state.directory = directory
        app.state.supabase_tokens = supabase_tokens
        app.state.embedded = embedded
        app.state.schema_revision = migrate.head_revision()
        app.state.webhook = webhook.WebhookDependencies(
            auth=webhook_auth,
            flood=FloodGuard(
                rate=settings.webhook_rate_per_instance, burst=settings.webhook_burst_per_instance
            ),
            directory=directory,
            service=IngestService(database, directory, writer, queue, settings),
            bodies=BodyBudget(
                total_bytes=settings.webhook_body_budget_bytes,
                unauthenticated_bytes=settings.webhook_unauthenticated_budget_bytes,
            ),
            max_bytes=settings.webhook_max_bytes,
            unauthenticated_read_seconds=settings.webhook_unauthenticated_read_seconds,
        )
        if not settings.is_production and not webhook_auth.transport_configured:
            log.warning("webhook authentication is off (development): set WEBHOOK_SECRET")
        if settings.webhook_legacy_secret or settings.webhook_legacy_jwt_key:
            log.warning(
                "WEBHOOK_LEGACY_SECRET/WEBHOOK_LEGACY_JWT_KEY are set: the old shared webhook "
                "credentials are accepted for every instance; run `intellizap webhook set --all`, "
                "then unset them"
            )
        gauges = contextlib.ExitStack()
        gauges.enter_context(metrics.separate_listener(settings))
        gauges.enter_context(metrics.database_gauges(settings, url, _queues(queue)))
        # Everything built so far (modules, pools, caches) lives as long as the process: take it
        # out of the collector's generations so collections stop re-scanning it (bench/ingest.py:
        # 1.18x -> 1.33x the baseline once cryptography, pulled in by PyJWT, joined the heap).
        gc.freeze()
        log.info("intellizap started", embedded_database=embedded is not None)
        try:
            yield
        finally:
            gauges.close()
            if worker is not None:
                worker.cancel()  # graceful: running jobs get time to finish, see jobs.run_worker
                await asyncio.gather(worker, return_exceptions=True)
            await writer.stop()
            await supabase_tokens.aclose()
            await queue.close_async()
            await database.dispose()
            if embedded is not None:
                await asyncio.to_thread(embedded.release)

    app = _Application(
        title="IntelliZap backend",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(frontend.router)
    if settings.cors_origin_list:
        # The frontend calls /api/ from the browser. A pure ASGI middleware: requests without
        # an Origin header (Evolution's webhooks) pass straight through.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location", "Retry-After"],
            max_age=600,
        )
    app.router.routes.extend(webhook.routes)
    _install_error_handlers(app)

    app.add_api_route("/metrics", metrics.metrics_endpoint, include_in_schema=False)

    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def rejected(request: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in STATUS_CODES.items() if isinstance(exc, kind))
        WEBHOOKS.labels(status=str(status)).inc()
        log.info("webhook refused", status=status, reason=str(exc), path=request.url.path)
        # A refusal before the body was read keeps the connection: the server discards the
        # rest as it arrives (memory stays flat), and the client reads its answer. Closing
        # with unread data would reset the connection, and Evolution retries a reset.
        headers = {"Retry-After": "5"} if status == 503 else {}
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database, or the job queue on it, failed mid-request: what was committed stays
        # (a retried webhook is idempotent and queues what is missing), the rest is retried.
        what = "job queue" if isinstance(exc, ConnectorException) else "database"
        if request.url.path.startswith(webhook.PATH):
            WEBHOOKS.labels(status="503").inc()
        log.warning(f"{what} unavailable", path=request.url.path, error=str(exc))
        return JSONResponse(
            {"detail": f"{what} temporarily unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # Where and what, never the rejected value (it could be a secret pasted by mistake).
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        log.info("request refused", status=422, reason=problems, path=request.url.path)
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)

    app.add_exception_handler(WebhookRejected, rejected)
    app.add_exception_handler(PayloadError, rejected)
    app.add_exception_handler(DatabaseUnavailable, unavailable)
    app.add_exception_handler(ConnectorException, unavailable)
    app.add_exception_handler(RequestValidationError, invalid_request)
