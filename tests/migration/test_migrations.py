"""The Alembic migrations on an empty database, on the frontend's legacy Supabase tables, and
with Supabase's ``auth`` schema (row-level security per user)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import errors

from intellizap.db import migrate
from intellizap.db.models import Base

from .conftest import MigrationDatabase, api_request

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


# -- empty database --------------------------------------------------------------------------


def test_upgrade_on_an_empty_database_creates_the_whole_schema(new_database: NewDatabase) -> None:
    database = new_database()
    assert migrate.current_revision(database.url) is None

    migrate.upgrade(database.url)

    assert migrate.current_revision(database.url) == migrate.head_revision()
    with psycopg.connect(database.url) as conn:
        assert missing_model_columns(conn) == []
        for table in QUEUE_TABLES:
            assert conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (table,)
        # A fresh database gets the backend's own types.
        assert columns(conn, "mensagens")["data_mensagem"][0] == "timestamp with time zone"
        assert columns(conn, "resumos")["status"][:2] == ("USER-DEFINED", "status_resumo")
        indexes: dict[str, str] = dict(
            conn.execute("SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'public'")
        )
        for index, table in UNIQUE_INDEXES.items():
            assert indexes.get(index) == table


def test_upgrade_twice_on_an_empty_database_changes_nothing(new_database: NewDatabase) -> None:
    database = new_database()
    migrate.upgrade(database.url)
    with psycopg.connect(database.url) as conn:
        before = schema_snapshot(conn)

    migrate.upgrade(database.url)

    assert migrate.current_revision(database.url) == migrate.head_revision()
    with psycopg.connect(database.url) as conn:
        assert schema_snapshot(conn) == before


def test_replaying_every_migration_over_an_existing_schema_changes_nothing(
    new_database: NewDatabase,
) -> None:
    """The migrations are idempotent statement by statement, not only through alembic_version."""
    database = new_database()
    migrate.upgrade(database.url)
    with psycopg.connect(database.url, autocommit=True) as conn:
        before = schema_snapshot(conn)
        conn.execute("DROP TABLE alembic_version")

    migrate.upgrade(database.url)

    with psycopg.connect(database.url) as conn:
        after = schema_snapshot(conn)
    assert after == before


# -- legacy Supabase database ----------------------------------------------------------------

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


@pytest.fixture
def legacy_database(new_database: NewDatabase) -> MigrationDatabase:
    database = new_database(legacy=True)
    insert_legacy_rows(database.url)
    return database


def test_upgrade_on_a_legacy_database_keeps_every_row_and_value(
    legacy_database: MigrationDatabase,
) -> None:
    before = legacy_rows(legacy_database.url)
    assert [len(before[t]) for t in LEGACY_COLUMNS] == [1, 2, 4, 1]

    migrate.upgrade(legacy_database.url)

    assert migrate.current_revision(legacy_database.url) == migrate.head_revision()
    assert legacy_rows(legacy_database.url) == before


def test_existing_rows_get_the_summary_options_they_had_before_the_options_existed(
    legacy_database: MigrationDatabase,
) -> None:
    migrate.upgrade(legacy_database.url)

    with psycopg.connect(legacy_database.url) as conn:
        groups = conn.execute(
            "SELECT DISTINCT resumo_destino, idioma, instrucoes_resumo, resumo_semanal_dia,"
            " resumo_semanal_hora FROM grupos"
        ).fetchall()
        accounts = conn.execute(
            "SELECT idioma, mencoes_ativas, resumo_diario_dono, numero_dono FROM usuarios"
        ).fetchall()
        with pytest.raises(errors.CheckViolation):
            conn.execute("UPDATE grupos SET resumo_destino = 'todos'")
        conn.rollback()
        with pytest.raises(errors.CheckViolation):
            conn.execute("UPDATE usuarios SET numero_dono = '+55 11 98888-7777'")
    # In the group, in the detected language, no instructions, no recap; no mentions, no digest.
    assert groups == [("grupo", None, None, None, None)]
    assert accounts == [(None, False, False, None)]


def test_upgrade_on_a_legacy_database_keeps_the_original_column_types(
    legacy_database: MigrationDatabase,
) -> None:
    migrate.upgrade(legacy_database.url)

    with psycopg.connect(legacy_database.url) as conn:
        for (table, column), data_type in LEGACY_TYPES.items():
            assert columns(conn, table)[column][0] == data_type, f"{table}.{column}"
        assert columns(conn, "resumos")["status"][1] == "resumo_status"
        row = conn.execute(
            "SELECT data_mensagem FROM mensagens WHERE id = %s", (MESSAGE_IDS[1],)
        ).fetchone()
        assert row == (datetime(2025, 3, 1, 12, 1, 30),)


def test_upgrade_on_a_legacy_database_adds_the_missing_columns_with_defaults(
    legacy_database: MigrationDatabase,
) -> None:
    migrate.upgrade(legacy_database.url)

    with psycopg.connect(legacy_database.url) as conn:
        assert missing_model_columns(conn) == []
        for table in ("alteracoes_pendentes", "uso_tokens", "procrastinate_jobs"):
            assert conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (table,)
        mensagens = columns(conn, "mensagens")
        for column in ("id_externo", "tipo", "editada_em", "apagada_em"):
            assert column in mensagens
        assert mensagens["editada_em"][0] == "timestamp with time zone"
        # Existing rows get the defaults of the added columns.
        assert conn.execute(
            'SELECT fuso_horario, "dia-renovacao-tokens", max_grupos, evolution_token,'
            " created_at IS NOT NULL FROM usuarios"
        ).fetchall() == [("America/Sao_Paulo", 1, None, None, True)]
        assert conn.execute(
            "SELECT origem, tokens_usados, data_referencia, erro FROM resumos"
        ).fetchall() == [("agendado", 0, None, None)]
        assert conn.execute(
            "SELECT DISTINCT id_externo, tipo, enviada_por_mim, editada_em, apagada_em"
            " FROM mensagens"
        ).fetchall() == [(None, None, False, None, None)]
        assert conn.execute("SELECT DISTINCT nome FROM grupos").fetchall() == [(None,)]
        # New rows get them too.
        new_user = conn.execute(
            "INSERT INTO usuarios (instancia) VALUES (%s) RETURNING fuso_horario,"
            ' "dia-renovacao-tokens"',
            ("loja-nova",),
        ).fetchone()
        assert new_user == ("America/Sao_Paulo", 1)


def test_upgrade_on_a_legacy_database_gives_mensagens_id_a_default(
    legacy_database: MigrationDatabase,
) -> None:
    with psycopg.connect(legacy_database.url) as conn:
        assert columns(conn, "mensagens")["id"][2] is None
        with pytest.raises(errors.NotNullViolation):
            conn.execute(
                "INSERT INTO mensagens (grupo_id, mensagem) VALUES (%s, 'x')", (GROUP_IDS[0],)
            )

    migrate.upgrade(legacy_database.url)

    with psycopg.connect(legacy_database.url) as conn:
        assert columns(conn, "mensagens")["id"][2] == "gen_random_uuid()"
        row = conn.execute(
            "INSERT INTO mensagens (grupo_id, mensagem) VALUES (%s, 'sem id') RETURNING id",
            (GROUP_IDS[0],),
        ).fetchone()
        assert row is not None
        assert isinstance(row[0], uuid.UUID)
        assert row[0] not in MESSAGE_IDS


def test_upgrade_on_a_legacy_database_creates_working_unique_indexes(
    legacy_database: MigrationDatabase,
) -> None:
    migrate.upgrade(legacy_database.url)

    with psycopg.connect(legacy_database.url, autocommit=True) as conn:
        indexes: dict[str, str] = dict(
            conn.execute(
                "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'public'"
                " AND indexdef LIKE 'CREATE UNIQUE INDEX%'"
            )
        )
        for index, table in UNIQUE_INDEXES.items():
            assert indexes.get(index) == table

        insert = "INSERT INTO mensagens (grupo_id, id_externo, mensagem) VALUES (%s, %s, %s)"
        conn.execute(insert, (GROUP_IDS[0], "WAMSG-1", "first"))
        with pytest.raises(errors.UniqueViolation):
            conn.execute(insert, (GROUP_IDS[0], "WAMSG-1", "again"))
        # The same WhatsApp id in another group is another message.
        conn.execute(insert, (GROUP_IDS[1], "WAMSG-1", "other group"))
        assert conn.execute(
            "SELECT count(*) FROM mensagens WHERE id_externo = 'WAMSG-1'"
        ).fetchone() == (2,)

        with pytest.raises(errors.UniqueViolation):
            conn.execute(
                "INSERT INTO grupos (grupo_id_externo, usuario_id) VALUES ('12036300@g.us', %s)",
                (USER_ID,),
            )
        with pytest.raises(errors.UniqueViolation):
            conn.execute("INSERT INTO usuarios (instancia) VALUES ('loja-centro')")


def test_upgrade_leaves_frontend_only_tables_and_columns_alone(
    legacy_database: MigrationDatabase,
) -> None:
    with psycopg.connect(legacy_database.url) as conn:
        conn.execute("ALTER TABLE usuarios ADD COLUMN apelido varchar DEFAULT 'cliente'")
        conn.execute("CREATE TABLE planos (id serial PRIMARY KEY, nome text)")
        conn.execute("INSERT INTO planos (nome) VALUES ('basico')")

    migrate.upgrade(legacy_database.url)

    with psycopg.connect(legacy_database.url) as conn:
        assert conn.execute("SELECT apelido FROM usuarios").fetchall() == [("cliente",)]
        assert conn.execute("SELECT id, nome FROM planos").fetchall() == [(1, "basico")]


# -- row-level security ------------------------------------------------------------------------


def test_without_an_auth_schema_row_level_security_stays_off(new_database: NewDatabase) -> None:
    database = new_database(legacy=True)

    migrate.upgrade(database.url)

    with psycopg.connect(database.url) as conn:
        for table in OUR_TABLES + QUEUE_TABLES:
            assert rls_enabled(conn, table) is False, table
        assert policies(conn) == []


def test_with_an_auth_schema_every_table_gets_row_level_security(new_database: NewDatabase) -> None:
    database = new_database(supabase_auth=True)

    migrate.upgrade(database.url)

    with psycopg.connect(database.url) as conn:
        for table in OUR_TABLES + QUEUE_TABLES:
            assert rls_enabled(conn, table) is True, table
        assert policies(conn) == EXPECTED_POLICIES


def test_migrating_a_legacy_supabase_database_twice_keeps_the_policies(
    new_database: NewDatabase,
) -> None:
    database = new_database(legacy=True, supabase_auth=True)
    insert_legacy_rows(database.url)
    before = legacy_rows(database.url)

    migrate.upgrade(database.url)
    with psycopg.connect(database.url) as conn:
        migrated = schema_snapshot(conn)
    migrate.upgrade(database.url)
    # Replaying the migrations themselves (as on a database whose alembic_version was lost)
    # drops and recreates the policies instead of failing on the existing ones.
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("DROP TABLE alembic_version")
    migrate.upgrade(database.url)
    with psycopg.connect(database.url) as conn:
        assert schema_snapshot(conn) == migrated

    assert migrate.current_revision(database.url) == migrate.head_revision()
    assert legacy_rows(database.url) == before
    with psycopg.connect(database.url) as conn:
        for table in OUR_TABLES + QUEUE_TABLES:
            assert rls_enabled(conn, table) is True, table
        assert policies(conn) == EXPECTED_POLICIES

    with api_request(database, sub=AUTH_ID) as conn:
        assert ids(conn, "usuarios") == {USER_ID}
        assert ids(conn, "grupos") == set(GROUP_IDS)
        assert ids(conn, "mensagens") == set(MESSAGE_IDS)
        assert ids(conn, "resumos") == {SUMMARY_ID}
        # The legacy account keeps working from the frontend: its preferences, its groups.
        changed = conn.execute(
            "UPDATE usuarios SET \"horaResumo\" = '22:00' RETURNING hora_resumo_local::text"
        ).fetchall()
        assert changed == [("22:00:00",)]
        assert conn.execute("UPDATE grupos SET resumo_ativo = true").rowcount == 2
    with api_request(database, sub=OTHER_AUTH_ID) as conn:
        for table in PER_USER_TABLES:
            assert ids(conn, table) == set(), table


@pytest.mark.parametrize(
    ("duplicate", "advice"),
    [
        ("INSERT INTO usuarios (instancia) VALUES ('twin'), ('twin')", "'twin'"),
        (
            "WITH u AS (INSERT INTO usuarios (instancia) VALUES ('solo') RETURNING id) "
            "INSERT INTO grupos (id, grupo_id_externo, usuario_id) "
            "SELECT gen_random_uuid(), '1203@g.us', id FROM u, generate_series(1, 2)",
            "'1203@g.us'",
        ),
    ],
    ids=["instance", "group"],
)
def test_legacy_duplicates_stop_the_upgrade_with_a_clear_message_and_lose_nothing(
    new_database: NewDatabase, duplicate: str, advice: str
) -> None:
    database = new_database(legacy=True)
    with psycopg.connect(database.url) as conn:
        conn.execute(duplicate)
        before = conn.execute("SELECT count(*) FROM usuarios").fetchone()

    with pytest.raises(Exception, match="before migrating") as error:
        migrate.upgrade(database.url)

    assert advice in str(error.value)
    with psycopg.connect(database.url) as conn:
        assert conn.execute("SELECT count(*) FROM usuarios").fetchone() == before
        assert migrate.current_revision(database.url) is None


# -- the send ledger ---------------------------------------------------------------------------


def test_the_send_ledger_refuses_an_unknown_status(new_database: NewDatabase) -> None:
    database = new_database()
    migrate.upgrade(database.url)
    with psycopg.connect(database.url) as conn:
        user_id = conn.execute(
            "INSERT INTO usuarios (instancia) VALUES ('x') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        with pytest.raises(errors.CheckViolation):
            conn.execute(
                "INSERT INTO envios (chave, usuario_id, lote, parte, partes, numero,"
                " destino_jid, texto_hash, status) VALUES ('k', %s, 'l', 0, 1, 'n', 'n', 'h',"
                " 'perdido')",
                (user_id,),
            )
