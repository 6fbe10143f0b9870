"""What the migration tests share: the tables, a legacy Supabase database's rows, and how the
schema is read back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg

from intellizap.db.models import Base

from .conftest import MigrationDatabase

NewDatabase = Callable[..., MigrationDatabase]

OUR_TABLES = ("usuarios", "grupos", "mensagens", "resumos", "uso_tokens", "alteracoes_pendentes")
PER_USER_TABLES = ("usuarios", "grupos", "mensagens", "resumos", "uso_tokens", "resumos_dono")
#: One policy per command (migration 0007): read everywhere, update where preferences live.
EXPECTED_POLICIES = sorted(
    [(table, "intellizap_select") for table in PER_USER_TABLES]
    + [(table, "intellizap_update") for table in ("usuarios", "grupos")]
)
QUEUE_TABLES = (
    "procrastinate_workers",
    "procrastinate_jobs",
    "procrastinate_periodic_defers",
    "procrastinate_events",
)
UNIQUE_INDEXES = {
    "usuarios_instancia_key": "usuarios",
    "grupos_usuario_id_grupo_id_externo_key": "grupos",
    "mensagens_grupo_id_id_externo_key": "mensagens",
    "resumos_agendado_grupo_id_data_referencia_key": "resumos",
}


# -- helpers -------------------------------------------------------------------------------


def columns(conn: psycopg.Connection[Any], table: str) -> dict[str, tuple[str, str, str | None]]:
    """column name -> (data_type, udt_name, column_default) for ``public.table``."""
    rows = conn.execute(
        "SELECT column_name, data_type, udt_name, column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s",
        (table,),
    ).fetchall()
    return {name: (data_type, udt, default) for name, data_type, udt, default in rows}


def missing_model_columns(conn: psycopg.Connection[Any]) -> list[str]:
    """``table.column`` of every column mapped in models.py that the database lacks."""
    missing = []
    for table in Base.metadata.sorted_tables:
        existing = columns(conn, table.name)
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in existing]
    return missing


def schema_snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a migration could change, in a comparable form."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, udt_name, column_default,"
        " is_nullable FROM information_schema.columns WHERE table_schema = 'public'",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'public'",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
        " FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
        "policies": "SELECT tablename, policyname, cmd, qual, with_check FROM pg_policies",
        "rls": "SELECT relname, relrowsecurity FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
        "types": "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace",
        "privileges": "SELECT c.relname, coalesce(c.relacl::text, ''), a.attname,"
        " coalesce(a.attacl::text, '') FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0",
        "functions": "SELECT oid::regprocedure::text, coalesce(proacl::text, '') FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace",
        "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger"
        " WHERE NOT tgisinternal",
    }
    return {key: sorted(conn.execute(sql).fetchall()) for key, sql in queries.items()}


def rls_enabled(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute(
        "SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(%s)", (f"public.{table}",)
    ).fetchone()
    assert row is not None, f"{table} does not exist"
    return bool(row[0])


def policies(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return sorted(
        conn.execute("SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public'")
    )


def ids(conn: psycopg.Connection[Any], table: str, column: str = "id") -> set[Any]:
    return {row[0] for row in conn.execute(f'SELECT "{column}" FROM {table}')}  # noqa: S608


# -- a legacy Supabase database ----------------------------------------------------------------

USER_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
AUTH_ID = uuid.UUID("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
OTHER_AUTH_ID = uuid.UUID("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
GROUP_IDS = (
    uuid.UUID("22222222-2222-4222-8222-222222222221"),
    uuid.UUID("22222222-2222-4222-8222-222222222222"),
)
MESSAGE_IDS = tuple(uuid.UUID(f"33333333-3333-4333-8333-33333333333{n}") for n in range(4))
SUMMARY_ID = uuid.UUID("44444444-4444-4444-8444-444444444444")

LEGACY_COLUMNS = {
    "usuarios": 'id, auth_id, instancia, "horaResumo", transcricao_ativa, "key-openai", tokens_mes',
    "grupos": "id, grupo_id_externo, usuario_id, ativo, resumo_ativo, transcricao_ativa",
    "mensagens": 'id, grupo_id, mensagem, "nome-autor", "numero-autor", data_mensagem',
    "resumos": "id, grupo_id, usuario_id, conteudo, total_mensagens, status::text, data_envio",
}

LEGACY_TYPES = {
    ("usuarios", "id"): "uuid",
    ("usuarios", "auth_id"): "uuid",
    ("usuarios", "instancia"): "character varying",
    ("usuarios", "horaResumo"): "character varying",
    ("usuarios", "transcricao_ativa"): "boolean",
    ("usuarios", "key-openai"): "character varying",
    ("usuarios", "tokens_mes"): "integer",
    ("grupos", "grupo_id_externo"): "character varying",
    ("grupos", "usuario_id"): "uuid",
    ("grupos", "ativo"): "boolean",
    ("mensagens", "mensagem"): "text",
    ("mensagens", "nome-autor"): "character varying",
    ("mensagens", "numero-autor"): "character varying",
    ("mensagens", "data_mensagem"): "timestamp without time zone",
    ("resumos", "conteudo"): "text",
    ("resumos", "total_mensagens"): "integer",
    ("resumos", "status"): "USER-DEFINED",
    ("resumos", "data_envio"): "timestamp without time zone",
}


def insert_legacy_rows(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            'INSERT INTO usuarios (id, auth_id, instancia, "horaResumo", transcricao_ativa,'
            ' "key-openai", tokens_mes) VALUES (%s, %s, %s, %s, %s, %s, %s)',
            (USER_ID, AUTH_ID, "loja-centro", "21:00", True, "sk-legacy-key", 50000),
        )
        for n, group_id in enumerate(GROUP_IDS):
            conn.execute(
                "INSERT INTO grupos (id, grupo_id_externo, usuario_id, ativo, resumo_ativo,"
                " transcricao_ativa) VALUES (%s, %s, %s, %s, %s, %s)",
                (group_id, f"1203630{n}@g.us", USER_ID, True, n == 0, False),
            )
        for n, message_id in enumerate(MESSAGE_IDS):
            conn.execute(
                'INSERT INTO mensagens (id, grupo_id, mensagem, "nome-autor", "numero-autor",'
                " data_mensagem) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    message_id,
                    GROUP_IDS[n % 2],
                    f"mensagem {n} – ção",
                    f"Autor {n}",
                    f"55119999000{n}",
                    datetime(2025, 3, 1, 12, n, 30),
                ),
            )
        conn.execute(
            "INSERT INTO resumos (id, grupo_id, usuario_id, conteudo, total_mensagens, status,"
            " data_envio) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                SUMMARY_ID,
                GROUP_IDS[0],
                USER_ID,
                "Resumo do dia",
                2,
                "enviado",
                datetime(2025, 3, 1, 21),
            ),
        )


def legacy_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT {cols} FROM {table} ORDER BY id").fetchall()  # noqa: S608
            for table, cols in LEGACY_COLUMNS.items()
        }
