"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from intellizap.db import migrate
from intellizap.db.engine import Database, is_connection_error

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready to serve: the database answers and its schema is at this code's migration head."""
    database: Database = request.app.state.database
    expected: str = request.app.state.schema_revision
    try:
        revision = await migrate.applied_revision(database)
    except Exception as exc:
        if not is_connection_error(exc):
            revision = None  # no alembic_version table: never migrated
        else:
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"}, status_code=503
            )
    if revision != expected:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "ok",
                "migrations": f"database at {revision or 'no revision'}, code expects "
                f"{expected}: run `intellizap migrate`",
            },
            status_code=503,
        )
    worker = request.app.state.worker
    if worker is not None and worker.done():
        return JSONResponse(
            {"status": "unavailable", "database": "ok", "worker": "stopped"}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok", "migrations": revision})
