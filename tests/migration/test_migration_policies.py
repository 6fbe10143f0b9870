"""The migrations with Supabase's ``auth`` schema (row-level security per user), and the
constraints of the backend's own tables."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from intellizap.db import migrate

from .conftest import api_request
from .schema_helpers import (
    AUTH_ID,
    EXPECTED_POLICIES,
    GROUP_IDS,
    MESSAGE_IDS,
    OTHER_AUTH_ID,
    OUR_TABLES,
    PER_USER_TABLES,
    QUEUE_TABLES,
    SUMMARY_ID,
    USER_ID,
    NewDatabase,
    ids,
    insert_legacy_rows,
    legacy_rows,
    policies,
    rls_enabled,
    schema_snapshot,
)

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
