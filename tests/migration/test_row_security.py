"""The tenant boundary on a Supabase-like database, cell by cell (docs/security.md, "Database").

Every statement runs as PostgREST runs a request: logged in as ``authenticator``, switched to
``authenticated`` (or ``anon``) with the JWT's claims in ``request.jwt.claims``, against a
migrated database whose tables got Supabase's default grants (``ALL`` to the API roles). Tenant A
attacks; tenant B is the victim. Each request is rolled back, so one migrated database serves the
module; tests that change the database make their own.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from .conftest import api_request
from .supabase_tenants import (
    READABLE,
    WRITABLE_COLUMNS,
    Supabase,
    attempt,
    columns_of,
    one,
    tables_in_public,
)

INTERNAL = (
    "alteracoes_pendentes",
    "audios_pendentes",
    "mensagens_enviadas",
    "envios",
    "reservas_tokens",
    "procrastinate_jobs",
    "procrastinate_workers",
    "procrastinate_periodic_defers",
    "procrastinate_events",
    "alembic_version",
)
ALL_TABLES = READABLE + INTERNAL


# -- read -------------------------------------------------------------------------------------


def test_the_matrix_covers_every_table_in_public(supabase: Supabase) -> None:
    assert tables_in_public(supabase.database) == set(ALL_TABLES)


@pytest.mark.parametrize("table", READABLE)
def test_a_customer_reads_exactly_their_own_rows(supabase: Supabase, table: str) -> None:
    key = "id"
    for tenant in (supabase.a, supabase.b):
        with api_request(supabase.database, sub=tenant.auth_id) as conn:
            seen = {
                row[0]
                for row in conn.execute(
                    sql.SQL("SELECT {} FROM {}").format(sql.Identifier(key), sql.Identifier(table))
                )
            }
        assert seen == tenant.rows(table)


@pytest.mark.parametrize("table", READABLE)
def test_a_token_without_a_subject_reads_nothing(supabase: Supabase, table: str) -> None:
    statement = f'SELECT count(*) FROM "{table}"'  # noqa: S608 - a constant table name
    with api_request(supabase.database, sub=None) as conn:
        assert one(conn, statement) == 0


@pytest.mark.parametrize("table", INTERNAL)
def test_a_customer_cannot_read_internal_tables(supabase: Supabase, table: str) -> None:
    assert attempt(supabase, f'SELECT * FROM "{table}"') == "denied"  # noqa: S608


@pytest.mark.parametrize("table", ALL_TABLES)
@pytest.mark.parametrize(
    "statement",
    [
        'SELECT * FROM "{t}"',
        'DELETE FROM "{t}"',
        'TRUNCATE "{t}"',
        'INSERT INTO "{t}" DEFAULT VALUES',
    ],
    ids=["select", "delete", "truncate", "insert"],
)
def test_anon_can_do_nothing(supabase: Supabase, table: str, statement: str) -> None:
    assert attempt(supabase, statement.format(t=table), sub=None, role="anon") == "denied"


# -- insert -------------------------------------------------------------------------------------


def insert_statements(s: Supabase) -> dict[str, list[tuple[str, tuple[Any, ...]]]]:
    """Per table: rows tenant A might try to create, pointing at their own rows and at B's."""
    a, b = s.a, s.b
    return {
        "usuarios": [
            ("INSERT INTO usuarios (auth_id, instancia) VALUES (%s, 'unclaimed')", (a.auth_id,)),
            ('INSERT INTO usuarios (auth_id, "horaResumo") VALUES (%s, %s)', (a.auth_id, "08:00")),
        ],
        "grupos": [
            (
                "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo) VALUES (%s, %s, true)",
                ("120363499999999999@g.us", owner),
            )
            for owner in (a.user, b.user)
        ],
        "mensagens": [
            ("INSERT INTO mensagens (grupo_id, mensagem) VALUES (%s, 'forged')", (group,))
            for group in (a.group, b.group)
        ],
        "resumos": [
            (
                "INSERT INTO resumos (grupo_id, usuario_id, status) VALUES (%s, %s, 'pendente')",
                (group, a.user),
            )
            for group in (a.group, b.group)
        ],
        "uso_tokens": [
            (
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, chave, tokens_entrada)"
                " VALUES (%s, 'resumo', 'gpt-4o-mini', 'plataforma', -1000000)",
                (owner,),
            )
            for owner in (a.user, b.user)
        ],
        "resumos_dono": [
            (
                "INSERT INTO resumos_dono (usuario_id, data_referencia, conteudo)"
                " VALUES (%s, current_date + 1, 'forged')",
                (owner,),
            )
            for owner in (a.user, b.user)
        ],
        "alteracoes_pendentes": [
            ("INSERT INTO alteracoes_pendentes (grupo_id, id_externo) VALUES (%s, 'x')", (g,))
            for g in (a.group, b.group)
        ],
        "audios_pendentes": [
            ("INSERT INTO audios_pendentes (mensagem_id, midia) VALUES (%s, '{}')", (m,))
            for m in (max(a.messages), max(b.messages))
        ],
        "mensagens_enviadas": [
            ("INSERT INTO mensagens_enviadas (id_externo, usuario_id) VALUES ('x', %s)", (u,))
            for u in (a.user, b.user)
        ],
        "envios": [
            (
                "INSERT INTO envios (chave, usuario_id, lote, parte, partes, numero, destino_jid,"
                " texto, texto_hash) VALUES ('k', %s, 'l', 0, 1, 'g@g.us', 'g@g.us', 'x', 'h')",
                (u,),
            )
            for u in (a.user, b.user)
        ],
        "reservas_tokens": [
            (
                "INSERT INTO reservas_tokens (usuario_id, tokens, expira_em)"
                " VALUES (%s, 0, now() + interval '1 year')",
                (u,),
            )
            for u in (a.user, b.user)
        ],
        "procrastinate_jobs": [
            (
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args)"
                " VALUES ('summaries', 'summarize', %s)",
                (Jsonb({"summary_id": str(b.summary)}),),
            )
        ],
        "procrastinate_workers": [("INSERT INTO procrastinate_workers DEFAULT VALUES", ())],
        "procrastinate_periodic_defers": [
            (
                "INSERT INTO procrastinate_periodic_defers (task_name, defer_timestamp)"
                " VALUES ('summary_tick', 2)",
                (),
            )
        ],
        "procrastinate_events": [
            (
                "INSERT INTO procrastinate_events (job_id, type)"
                " SELECT id, 'deferred' FROM procrastinate_jobs",
                (),
            )
        ],
        "alembic_version": [("INSERT INTO alembic_version VALUES ('9999')", ())],
    }


@pytest.mark.parametrize("table", ALL_TABLES)
def test_a_customer_creates_no_row_anywhere(supabase: Supabase, table: str) -> None:
    statements = insert_statements(supabase)[table]
    assert [attempt(supabase, s, p) for s, p in statements] == ["denied"] * len(statements)


# -- update -------------------------------------------------------------------------------------


def self_assignment(table: str, column: str, generated_always: bool = False) -> str:
    """``UPDATE table SET column = column`` on every row the caller can see: it needs exactly
    the UPDATE privilege on that column, and changes nothing."""
    value = sql.SQL("DEFAULT") if generated_always else sql.Identifier(column)
    return (
        sql.SQL("UPDATE {t} SET {c} = {v}")
        .format(t=sql.Identifier(table), c=sql.Identifier(column), v=value)
        .as_string(None)
    )


@pytest.mark.parametrize("table", READABLE)
def test_a_customer_updates_only_their_preferences(supabase: Supabase, table: str) -> None:
    writable = WRITABLE_COLUMNS.get(table, set())
    outcomes = {
        column: attempt(supabase, self_assignment(table, column, generated))
        for column, generated in columns_of(supabase, table).items()
    }
    own = len(supabase.a.rows(table))
    assert outcomes == {column: own if column in writable else "denied" for column in outcomes}


@pytest.mark.parametrize("table", INTERNAL)
def test_a_customer_changes_nothing_in_internal_tables(supabase: Supabase, table: str) -> None:
    for column, generated in columns_of(supabase, table).items():
        assert attempt(supabase, self_assignment(table, column, generated)) == "denied", column


@pytest.mark.parametrize(
    ("table", "column"),
    [(table, column) for table, columns in WRITABLE_COLUMNS.items() for column in sorted(columns)],
)
def test_another_tenants_preferences_are_out_of_reach(
    supabase: Supabase, table: str, column: str
) -> None:
    victim = supabase.b.user if table == "usuarios" else supabase.b.group
    statement = self_assignment(table, column) + " WHERE id = %s"
    assert attempt(supabase, statement, (victim,)) == 0


# -- delete -------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ALL_TABLES)
def test_a_customer_deletes_nothing(supabase: Supabase, table: str) -> None:
    assert attempt(supabase, f'DELETE FROM "{table}"') == "denied"  # noqa: S608
    assert attempt(supabase, f'TRUNCATE "{table}"') == "denied"


# -- functions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('summaries', 'summarize', 0, NULL, NULL,"
        " '{}', NULL)::procrastinate_job_to_defer_v1])",
        "SELECT procrastinate_register_worker_v1()",
        "SELECT procrastinate_prune_stalled_workers_v1(0)",
    ],
)
def test_a_customer_cannot_call_the_queue_functions(supabase: Supabase, call: str) -> None:
    assert attempt(supabase, call) == "denied"
