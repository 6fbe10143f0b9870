"""Configuration and connection mistakes are said in one or two lines that name the variable and
what to do, with a non-zero exit and no traceback — also for an embedded database nobody migrated
yet, a wrong database password and an Evolution server that does not answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from intellizap.db.engine import Database
from tests.conftest import free_port
from tests.factories import create_tenant
from tests.fakes.postgres import WrongPasswordPostgres


def intellizap(
    *args: str, cwd: Path | None = None, **env: str | None
) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it: no XDG_RUNTIME_DIR, variables as given (None: unset)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("XDG_RUNTIME_DIR", "DATABASE_URL")
    }
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return subprocess.run(
        [sys.executable, "-m", "intellizap", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def assert_said_plainly(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stderr


async def test_invalid_variables_are_named_with_what_is_wrong(database_url: str) -> None:
    port, level, zone = await asyncio.gather(
        asyncio.to_thread(intellizap, "api", PORT="abc", DATABASE_URL=database_url),
        asyncio.to_thread(
            intellizap, "usuarios", "list", LOG_LEVEL="verbose", DATABASE_URL=database_url
        ),
        asyncio.to_thread(
            intellizap,
            "worker",
            DEFAULT_TIMEZONE="Mars/Olympus",
            WEBHOOK_SECRET="a-secret-that-must-not-be-shown",
            DATABASE_URL=database_url,
        ),
    )
    assert_said_plainly(port, "PORT: ", "valid integer", ".env")
    assert_said_plainly(level, "LOG_LEVEL: ", "'INFO'")
    assert_said_plainly(zone, "DEFAULT_TIMEZONE: ", "unknown IANA time zone")
    assert "a-secret-that-must-not-be-shown" not in zone.stderr


async def test_database_connection_mistakes_name_database_url_and_what_to_check(
    database_url: str,
) -> None:
    nothing_there = f"postgresql://postgres:pw@127.0.0.1:{free_port()}/postgres"
    with WrongPasswordPostgres.running() as fake:
        wrong_password = f"postgresql://postgres:s3cr3t-pass-word@127.0.0.1:{fake.port}/postgres"
        refused, unreachable, not_postgres, api = await asyncio.gather(
            asyncio.to_thread(intellizap, "migrate", DATABASE_URL=wrong_password),
            asyncio.to_thread(intellizap, "usuarios", "list", DATABASE_URL=nothing_there),
            asyncio.to_thread(intellizap, "worker", DATABASE_URL="mysql://u:p@db:3306/x"),
            asyncio.to_thread(intellizap, "api", DATABASE_URL=nothing_there),
        )
        assert fake.attempts >= 1  # it really got as far as the password
    assert_said_plainly(refused, "DATABASE_URL", "refused the password of user 'postgres'")
    assert "s3cr3t-pass-word" not in refused.stderr
    assert_said_plainly(unreachable, "DATABASE_URL", "nothing accepts connections at 127.0.0.1")
    assert_said_plainly(not_postgres, "DATABASE_URL must be a PostgreSQL URL")
    assert_said_plainly(api, "DATABASE_URL", "nothing accepts connections")


async def test_an_embedded_database_not_migrated_yet_says_to_migrate(tmp_path: Path) -> None:
    result = await asyncio.to_thread(
        intellizap, "usuarios", "list", cwd=tmp_path, DATA_DIR=str(tmp_path / "data")
    )
    assert_said_plainly(result, "has no IntelliZap schema yet", "intellizap migrate")
    assert f"DATA_DIR={tmp_path / 'data'}" in result.stderr
    migrated = await asyncio.to_thread(
        intellizap, "migrate", cwd=tmp_path, DATA_DIR=str(tmp_path / "data")
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "XDG_RUNTIME_DIR" not in migrated.stderr
    listing = await asyncio.to_thread(
        intellizap, "usuarios", "list", cwd=tmp_path, DATA_DIR=str(tmp_path / "data")
    )
    assert listing.returncode == 0, listing.stderr
    assert "no tenants yet" in listing.stdout
    assert listing.stderr == ""


async def test_grupos_sync_with_evolution_unreachable_names_evolution_api_url(
    clean_database: Database, database_url: str
) -> None:
    await create_tenant(clean_database, "acme-support")
    result = await asyncio.to_thread(
        intellizap,
        "grupos",
        "sync",
        "acme-support",
        DATABASE_URL=database_url,
        EVOLUTION_API_URL=f"http://127.0.0.1:{free_port()}",
    )
    assert_said_plainly(result, "EVOLUTION_API_URL", "did not answer", "Evolution is running")


async def test_version() -> None:
    result = await asyncio.to_thread(intellizap, "--version")
    assert result.returncode == 0
    assert result.stdout.strip().startswith("intellizap 0.")


async def test_a_metrics_port_in_use_is_said_before_starting(database_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        worker, api = await asyncio.gather(
            asyncio.to_thread(intellizap, "worker", METRICS_PORT=port, DATABASE_URL=database_url),
            asyncio.to_thread(intellizap, "api", METRICS_PORT=port, DATABASE_URL=database_url),
        )
    assert_said_plainly(worker, f"METRICS_PORT={port}", "choose a free port")
    assert_said_plainly(api, f"METRICS_PORT={port}", "choose a free port")
