"""The Alembic migrations on an empty database and on the frontend's legacy Supabase tables."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
import pytest
from psycopg import errors

from intellizap.db import migrate

from .conftest import MigrationDatabase
from .schema_helpers import (
    GROUP_IDS,
    LEGACY_COLUMNS,
    LEGACY_TYPES,
    MESSAGE_IDS,
    QUEUE_TABLES,
    UNIQUE_INDEXES,
    USER_ID,
    NewDatabase,
    columns,
    insert_legacy_rows,
    legacy_rows,
    missing_model_columns,
    schema_snapshot,
)

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
