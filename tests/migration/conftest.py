"""Fixtures for the migration tests: one throwaway server, a fresh database per test.

Each database is owned by a LOGIN role that is neither superuser nor BYPASSRLS, like the
``postgres`` role of a Supabase project: the legacy tables are created through it, the
migrations run through it, and its reads show what the backend sees. The superuser plays
Supabase's platform (it creates the ``auth`` schema and switches to the ``authenticated`` role
the way PostgREST does).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from intellizap.db.embedded import EmbeddedPostgres

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

# Supabase's auth.uid() reads the JWT's subject from a setting PostgREST fills per request.
SUPABASE_AUTH = """
CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid
$$;
"""

AUTHENTICATED_ROLE = """
DO $$ BEGIN
    CREATE ROLE authenticated NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
"""


@dataclass(frozen=True)
class MigrationDatabase:
    """A fresh database: ``url`` connects as its owner (not a superuser), ``admin_url`` as one."""

    name: str
    url: str
    admin_url: str


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
    yield url
    server.stop()


@pytest.fixture
def new_database(migration_server: str) -> Callable[..., MigrationDatabase]:
    """Create an empty database; ``legacy=True`` adds the frontend's original tables,
    ``supabase_auth=True`` adds an ``auth`` schema with a stand-in ``auth.uid()``."""

    def create(*, legacy: bool = False, supabase_auth: bool = False) -> MigrationDatabase:
        name = f"mig_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(migration_server, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
        database = MigrationDatabase(
            name=name,
            url=_database_url(migration_server, name, user=OWNER_ROLE),
            admin_url=_database_url(migration_server, name),
        )
        if supabase_auth:
            with psycopg.connect(database.admin_url, autocommit=True) as conn:
                conn.execute(SUPABASE_AUTH)
                conn.execute(AUTHENTICATED_ROLE)
                # Supabase's postgres role (the backend's) may use the auth schema.
                conn.execute(f"GRANT USAGE ON SCHEMA auth TO {OWNER_ROLE}")
        if legacy:
            with psycopg.connect(database.url, autocommit=True) as conn:
                conn.execute(LEGACY_SCHEMA)
        return database

    return create
