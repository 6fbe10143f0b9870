"""Shared fixtures: one embedded PostgreSQL for the whole run, real HTTP servers, row factories."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from intellizap.app import Roles, create_app
from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.db.engine import Database
from intellizap.ingest.credentials import (
    INSTANCE_HEADER,
    SECRET_HEADER,
    encode_instance,
    instance_secret,
)
from intellizap.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
WEBHOOK_SECRET = "test-webhook-secret-0123456789"


def webhook_headers(instance: str = "acme-support", secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """What Evolution sends for ``instance`` once `intellizap webhook set` configured it: the
    instance's name and its own secret, derived from ``WEBHOOK_SECRET``."""
    return {
        INSTANCE_HEADER: encode_instance(instance),
        SECRET_HEADER: instance_secret(secret, instance),
    }


def load_fixture(name: str) -> dict[str, Any]:
    """An Evolution fixture (a fresh copy each time, safe to modify)."""
    data: dict[str, Any] = json.loads((FIXTURES / "evolution" / name).read_text())
    return data


@pytest.fixture
def evolution() -> Iterator[Any]:
    """A fake Evolution API (real HTTP on loopback); see tests/fakes/evolution.py."""
    from tests.fakes.evolution import FakeEvolution

    with FakeEvolution.running() as fake:
        yield fake


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedPostgres:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("intellizap"))
    server.url = server.start()  # type: ignore[attr-defined]
    migrate.upgrade(server.url)  # type: ignore[attr-defined]
    return server


@pytest.fixture(scope="session")
def database_url(postgres: EmbeddedPostgres) -> str:
    url: str = postgres.url  # type: ignore[attr-defined]
    return url


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url, pool_size=4)
    yield db
    await db.dispose()


TABLES = "alteracoes_pendentes, uso_tokens, resumos, mensagens, grupos, usuarios"


@pytest.fixture
async def clean_database(database: Database) -> Database:
    """The database with no tenants, groups, messages or jobs."""
    async with database.session() as session:
        await session.execute(text(f"TRUNCATE {TABLES} CASCADE"))
        await session.execute(text("TRUNCATE procrastinate_jobs CASCADE"))
    return database


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "webhook_secret": WEBHOOK_SECRET,
        "tenant_cache_seconds": 0,
        "evolution_api_url": "http://127.0.0.1:9",
        "openai_base_url": "http://127.0.0.1:9/v1",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def run_cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``intellizap ARGS…`` as its own process against ``database_url``; ``env`` adds variables."""
    return subprocess.run(
        [sys.executable, "-m", "intellizap", *args],
        env={**os.environ, "DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on loopback; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server failed to start")
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@asynccontextmanager
async def running_service(
    settings: Settings, roles: Roles | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The real application behind real HTTP; yields a client pointed at it."""
    with serve_in_thread(create_app(settings, roles)) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            yield client


@pytest.fixture
async def service(clean_database: Database, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The service with default test settings (webhook secret set, no cache staleness)."""
    async with running_service(make_settings(database_url)) as client:
        yield client


async def wait_until(predicate: Any, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    """``error`` (its message, repr and arguments) mentions none of ``secrets``."""
    for secret in secrets:
        assert secret not in str(error)
        assert secret not in repr(error)
        assert all(secret not in str(arg) for arg in error.args)
