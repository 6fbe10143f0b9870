"""Checks made before a command runs, each failure said in one or two lines: which variable, and
what to do. A configuration mistake is not a crash, so it never prints a traceback."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

import psycopg

from intellizap.db import migrate as migrations
from intellizap.db.engine import libpq_url, sqlalchemy_url
from intellizap.logging import redact
from intellizap.settings import Settings


class PreflightError(RuntimeError):
    """The command cannot run; the message says what to change. Exit status 2."""


def _where(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = str(parts.port or 5432)
    except ValueError:
        port = "?"
    host = parts.hostname or "the local socket"
    return f"{host}:{port}" if parts.hostname else host


def connection_problem(error: Exception, url: str, *, variable: str = "DATABASE_URL") -> str:
    """What a failed connection attempt means for the operator, naming the variable to fix."""
    text = str(error).strip()
    where = _where(url)
    user = urlsplit(url).username or "?"
    if "password authentication failed" in text or "no password supplied" in text:
        return (
            f"{variable}: the database at {where} refused the password of user {user!r}.\n"
            "Check the password in the URL (Supabase: Project Settings > Database > Connection "
            "string; a password with @ : / or % must be URL-encoded)."
        )
    if "could not translate host name" in text or "Name or service not known" in text:
        return (
            f"{variable}: the host {urlsplit(url).hostname!r} does not resolve.\n"
            "Check the host name (Supabase's direct db.<ref>.supabase.co is IPv6-only: use the "
            "session pooler, aws-0-<region>.pooler.supabase.com, on IPv4 networks)."
        )
    if "Connection refused" in text:
        return (
            f"{variable}: nothing accepts connections at {where}.\n"
            "Check the host and port, and that PostgreSQL is running there."
        )
    if "timeout expired" in text or "timed out" in text:
        return (
            f"{variable}: no answer from {where}.\n"
            "Check the host, the port and the network (firewall, allowed IPs, VPN)."
        )
    match = re.search(r'database "([^"]+)" does not exist', text)
    if match:
        return (
            f"{variable}: the server at {where} has no database {match[1]!r}.\n"
            "Check the database name at the end of the URL (Supabase: postgres)."
        )
    first_line = redact(text.splitlines()[0] if text else type(error).__name__)
    return f"{variable}: cannot connect to the database at {where}: {first_line}"


def check_connection(url: str, *, timeout: float, variable: str = "DATABASE_URL") -> None:
    """Connect once, so that a wrong URL is said plainly before anything starts."""
    try:
        sqlalchemy_url(url)
    except ValueError as exc:
        raise PreflightError(f"{variable}: {exc}") from None
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=max(1, int(timeout))):
            pass
    except psycopg.Error as exc:
        raise PreflightError(connection_problem(exc, url, variable=variable)) from None


SchemaState = Literal["current", "ahead", "behind", "empty"]


def schema_state(url: str) -> tuple[SchemaState, str | None]:
    """Where the database's schema is compared with this code's migrations."""
    revision = migrations.current_revision(url)
    if revision is None:
        return "empty", None
    if revision == migrations.head_revision():
        return "current", revision
    if revision in migrations.known_revisions():
        return "behind", revision
    return "ahead", revision  # migrated by a newer release: migrations are additive


def check_schema(url: str, settings: Settings) -> None:
    """Refuse to work on a database without our schema or with an older one."""
    state, revision = schema_state(url)
    where = (
        f"the embedded database under DATA_DIR={settings.data_dir}"
        if settings.uses_embedded_database
        else "the database at DATABASE_URL"
    )
    if state == "empty":
        raise PreflightError(
            f"{where} has no IntelliZap schema yet.\n"
            "Run `intellizap migrate` (or start `intellizap serve` once, which migrates)."
        )
    if state == "behind":
        raise PreflightError(
            f"{where} is at migration {revision}, this version needs "
            f"{migrations.head_revision()}.\nRun `intellizap migrate` first."
        )
