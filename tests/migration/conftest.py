"""Fixtures for the migration tests: one throwaway server, a fresh database per test.

Each database is owned by a LOGIN role that is neither superuser nor BYPASSRLS, like the
``postgres`` role of a Supabase project: the legacy tables are created through it, the
migrations run through it, and its reads show what the backend sees. The superuser plays
Supabase's platform (it creates the ``auth`` schema, the API roles and their default grants), and
``authenticator`` plays PostgREST: it switches to ``authenticated`` or ``anon`` per request and
sets the JWT's claims, exactly as PostgREST does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres

if TYPE_CHECKING:
    from .supabase_tenants import Supabase

OWNER_ROLE = "intellizap_backend"

# The four tables as the frontend created them in Supabase, with only their original columns.
# Deliberate differences from the backend's own schema: TIMESTAMP without time zone, a status
# enum with another name, nullable foreign keys without ON DELETE, and mensagens.id without a
# default.
LEGACY_SCHEMA = """
CREATE TYPE resumo_status AS ENUM ('pendente', 'enviado', 'erro');
CREATE TABLE usuarios (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    auth_id uuid,
    instancia varchar,
    "horaResumo" varchar,
    transcricao_ativa boolean,
    "key-openai" varchar,
    tokens_mes integer
);
CREATE TABLE grupos (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    grupo_id_externo varchar,
    usuario_id uuid REFERENCES usuarios (id),
    ativo boolean,
    resumo_ativo boolean,
    transcricao_ativa boolean
);
CREATE TABLE mensagens (
    id uuid PRIMARY KEY,
    grupo_id uuid REFERENCES grupos (id),
    mensagem text,
    "nome-autor" varchar,
    "numero-autor" varchar,
    data_mensagem timestamp
);
CREATE TABLE resumos (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    grupo_id uuid,
    usuario_id uuid,
    conteudo text,
    total_mensagens integer,
    status resumo_status,
    data_envio timestamp
);
"""

# Supabase's auth.uid(), as supabase/auth defines it: the JWT's subject from the settings PostgREST
# fills per request (``request.jwt.claims``, JSON, since PostgREST 9; ``request.jwt.claim.sub``
# before).
SUPABASE_AUTH = """
CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(
        coalesce(
            current_setting('request.jwt.claim.sub', true),
            (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')
        ),
        ''
    )::uuid
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
"""

#: PostgREST logs in as ``authenticator`` and switches, per request, to ``anon`` or
#: ``authenticated``; ``service_role`` (the service key) bypasses row-level security.
AUTHENTICATOR_ROLE = "authenticator"
SUPABASE_ROLES = f"""
DO $$ BEGIN
    CREATE ROLE anon NOLOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$ BEGIN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$ BEGIN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$ BEGIN
    CREATE ROLE {AUTHENTICATOR_ROLE} LOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
GRANT anon, authenticated, service_role TO {AUTHENTICATOR_ROLE};
"""

# What a Supabase project grants on its public schema: usage to the API roles, and ALL on every
# table, sequence and function its ``postgres`` role creates there, through default privileges.
SUPABASE_DEFAULT_GRANTS = f"""
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER_ROLE} IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


@dataclass(frozen=True)
class MigrationDatabase:
    """A fresh database: ``url`` connects as its owner (not a superuser), ``admin_url`` as one,
    ``api_url`` as PostgREST does (``authenticator``)."""

    name: str
    url: str
    admin_url: str
    api_url: str


def _database_url(server_url: str, database: str, user: str | None = None) -> str:
    parts = urlsplit(server_url)
    assert parts.path == "/postgres", server_url
    netloc = parts.netloc if user is None else f"{user}:@"
    return urlunsplit(parts._replace(path=f"/{database}", netloc=netloc))


@pytest.fixture(scope="module")
def migration_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The superuser URL of a PostgreSQL 16 server used only by this module."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("migrations"))
    url = server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"""
            DO $$ BEGIN
                CREATE ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
            EXCEPTION WHEN duplicate_object THEN NULL;
            END $$;
            """
        )
        conn.execute(SUPABASE_ROLES)
    yield url
    server.stop()


def create_database(
    server_url: str, *, legacy: bool = False, supabase_auth: bool = False
) -> MigrationDatabase:
    """An empty database owned by the backend's role; ``legacy=True`` adds the frontend's
    original tables, ``supabase_auth=True`` makes it a Supabase project (``auth`` schema and
    ``auth.uid()``, the API roles' default grants)."""
    name = f"mig_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    database = MigrationDatabase(
        name=name,
        url=_database_url(server_url, name, user=OWNER_ROLE),
        admin_url=_database_url(server_url, name),
        api_url=_database_url(server_url, name, user=AUTHENTICATOR_ROLE),
    )
    if supabase_auth:
        with psycopg.connect(database.admin_url, autocommit=True) as conn:
            conn.execute(SUPABASE_AUTH)
            conn.execute(SUPABASE_DEFAULT_GRANTS)
            # Supabase's postgres role (the backend's) may use the auth schema.
            conn.execute(f"GRANT USAGE ON SCHEMA auth TO {OWNER_ROLE}")
    if legacy:
        with psycopg.connect(database.url, autocommit=True) as conn:
            conn.execute(LEGACY_SCHEMA)
    return database


def _migrated_supabase(server_url: str) -> Supabase:
    from .supabase_tenants import populate  # which imports this module

    database = create_database(server_url, supabase_auth=True)
    migrate.upgrade(database.url)
    return populate(database)


@pytest.fixture(scope="module")
def supabase(migration_server: str) -> Supabase:
    """A migrated Supabase-like database with two tenants, shared by a module's tests."""
    return _migrated_supabase(migration_server)


@pytest.fixture
def fresh_supabase(migration_server: str) -> Supabase:
    """The same, a database of its own: for tests that change more than rows."""
    return _migrated_supabase(migration_server)


@pytest.fixture
def new_database(migration_server: str) -> Callable[..., MigrationDatabase]:
    """Create an empty database (see :func:`create_database`)."""

    def create(*, legacy: bool = False, supabase_auth: bool = False) -> MigrationDatabase:
        return create_database(migration_server, legacy=legacy, supabase_auth=supabase_auth)

    return create


@contextmanager
def api_request(
    database: MigrationDatabase, *, sub: uuid.UUID | None, role: str = "authenticated"
) -> Iterator[psycopg.Connection[Any]]:
    """One request as PostgREST serves it: logged in as ``authenticator``, switched to ``role``
    for the transaction, the JWT's claims in ``request.jwt.claims`` (``sub=None``: a token
    without a subject). Rolled back at the end; an error aborts it like a failed request."""
    assert role in ("anon", "authenticated"), role
    claims: dict[str, str] = {"role": role, "aud": role}
    if sub is not None:
        claims["sub"] = str(sub)
    with psycopg.connect(database.api_url) as conn:
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn
        conn.rollback()
