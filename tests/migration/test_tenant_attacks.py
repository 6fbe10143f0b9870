"""The attacks of issue 9, exactly as written there, by a signed-in customer's Supabase session;
what the frontend legitimately does; and the checks that keep the next table from forgetting.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors

from intellizap.db import migrate
from intellizap.db.migrations.row_security import lock_down_functions_sql, lock_down_sql

from .conftest import MigrationDatabase, api_request, create_database
from .supabase_tenants import (
    AUTH_A,
    AUTH_B,
    READABLE,
    WRITABLE_COLUMNS,
    Supabase,
    attempt,
    one,
)

API_ROLES = ("anon", "authenticated")
#: Exactly the privileges the API roles hold after the migrations (docs/security.md):
#: (grantee, object, privilege); a column privilege is "table.column".
EXPECTED_PRIVILEGES = {
    *(("authenticated", table, "SELECT") for table in READABLE),
    *(
        ("authenticated", f"{table}.{column}", "UPDATE")
        for table, columns in WRITABLE_COLUMNS.items()
        for column in columns
    ),
}

# Every privilege PUBLIC, anon or authenticated holds on a table, column, sequence or function of
# the public schema. A NULL ACL means the built-in default: nothing for tables and sequences,
# EXECUTE for PUBLIC on functions.
API_PRIVILEGES = """
WITH grantees (oid, name) AS (
    SELECT 0::oid, 'PUBLIC' UNION ALL
    SELECT oid, rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
), relations AS (
    SELECT c.relname AS object, a.grantee, a.privilege_type
    FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
), columns AS (
    SELECT c.relname || '.' || att.attname, a.grantee, a.privilege_type
    FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid, aclexplode(att.attacl) a
    WHERE c.relnamespace = 'public'::regnamespace AND att.attnum > 0 AND NOT att.attisdropped
), functions AS (
    SELECT p.oid::regprocedure::text, a.grantee, a.privilege_type
    FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    WHERE p.pronamespace = 'public'::regnamespace
)
SELECT g.name, x.object, x.privilege_type
FROM (SELECT * FROM relations UNION ALL SELECT * FROM columns UNION ALL SELECT * FROM functions)
     AS x (object, grantee, privilege_type)
JOIN grantees g ON g.oid = x.grantee
"""
TABLES_WITHOUT_RLS = """
SELECT relname FROM pg_class
WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') AND NOT relrowsecurity
"""


def api_privileges(database: MigrationDatabase) -> set[tuple[str, str, str]]:
    with psycopg.connect(database.admin_url) as conn:
        return {tuple(row) for row in conn.execute(API_PRIVILEGES)}  # type: ignore[misc]


def tables_without_rls(database: MigrationDatabase) -> set[str]:
    with psycopg.connect(database.admin_url) as conn:
        return {row[0] for row in conn.execute(TABLES_WITHOUT_RLS)}


def owner_reads(supabase: Supabase, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with psycopg.connect(supabase.database.url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


# -- the attacks of the issue -------------------------------------------------------------------


def test_a_customer_cannot_give_themselves_any_plan(supabase: Supabase) -> None:
    plan = 'SELECT tokens_mes, max_grupos, "dia-renovacao-tokens" FROM usuarios ORDER BY id'
    before = owner_reads(supabase, plan)
    ledger = owner_reads(supabase, "SELECT id, tokens_entrada FROM uso_tokens ORDER BY id")

    assert attempt(
        supabase, "UPDATE usuarios SET tokens_mes = 2147483647, max_grupos = 100000"
    ) == ("denied")
    assert attempt(supabase, 'UPDATE usuarios SET "dia-renovacao-tokens" = 28') == "denied"
    assert attempt(supabase, "DELETE FROM uso_tokens") == "denied"
    negative_usage = (
        "INSERT INTO uso_tokens (usuario_id, tipo, modelo, chave, tokens_entrada, tokens_saida)"
        " VALUES (%s, 'resumo', 'gpt-4o-mini', 'plataforma', -5000000, -5000000)"
    )
    assert attempt(supabase, negative_usage, (supabase.a.user,)) == "denied"

    assert owner_reads(supabase, plan) == before
    assert owner_reads(supabase, "SELECT id, tokens_entrada FROM uso_tokens ORDER BY id") == ledger


def test_a_customer_cannot_take_over_an_instance(supabase: Supabase) -> None:
    identity = "SELECT id, auth_id, instancia, evolution_token FROM usuarios ORDER BY id"
    before = owner_reads(supabase, identity)

    assert attempt(supabase, "UPDATE usuarios SET instancia = 'unclaimed-instance'") == "denied"
    assert attempt(supabase, "UPDATE usuarios SET evolution_token = NULL") == "denied"
    assert attempt(supabase, "UPDATE usuarios SET auth_id = %s", (AUTH_B,)) == "denied"
    second_account = "INSERT INTO usuarios (auth_id, instancia) VALUES (%s, 'unclaimed-instance')"
    assert attempt(supabase, second_account, (AUTH_A,)) == "denied"

    assert owner_reads(supabase, identity) == before


def test_a_customer_cannot_queue_a_summary_of_another_tenants_group(supabase: Supabase) -> None:
    forged = "INSERT INTO resumos (grupo_id, usuario_id, status) VALUES (%s, %s, 'pendente')"
    assert attempt(supabase, forged, (supabase.b.group, supabase.a.user)) == "denied"
    # Nor of their own: on-demand summaries are asked for through the API, which rate-limits.
    assert attempt(supabase, forged, (supabase.a.group, supabase.a.user)) == "denied"
    # Nor by moving one of their summaries to the victim's group.
    moved = "UPDATE resumos SET grupo_id = %s, status = 'pendente', conteudo = NULL"
    assert attempt(supabase, moved, (supabase.b.group,)) == "denied"
    assert owner_reads(supabase, "SELECT count(*) FROM resumos") == [(2,)]


def test_a_customer_cannot_move_a_group_to_another_account(supabase: Supabase) -> None:
    assert attempt(supabase, "UPDATE grupos SET usuario_id = %s", (supabase.b.user,)) == "denied"
    takeover = "UPDATE grupos SET grupo_id_externo = (SELECT '120363400000000098@g.us')"
    assert attempt(supabase, takeover) == "denied"


# -- what the frontend does ------------------------------------------------------------------


def test_the_frontend_reads_its_rows_and_changes_its_preferences(supabase: Supabase) -> None:
    a = supabase.a
    with api_request(supabase.database, sub=AUTH_A) as conn:
        account = conn.execute(
            'UPDATE usuarios SET "horaResumo" = %s, fuso_horario = %s, transcricao_ativa = true,'
            ' "key-openai" = %s, resumo_membros = true WHERE id = %s'
            ' RETURNING "horaResumo", fuso_horario, transcricao_ativa, resumo_membros,'
            " hora_resumo_local::text, fuso_efetivo, tokens_mes, instancia",
            ("07:30", "America/Manaus", "sk-own-key-of-a", a.user),
        ).fetchall()
        # The scheduler's columns follow (the trigger of migration 0005 fires for the user).
        assert account == [
            ("07:30", "America/Manaus", True, True, "07:30:00", "America/Manaus", 100000, "inst-a")
        ]
        group = conn.execute(
            "UPDATE grupos SET ativo = false, resumo_ativo = true, transcricao_ativa = true,"
            " nome = 'Equipe' WHERE id = %s RETURNING ativo, resumo_ativo, transcricao_ativa, nome",
            (a.group,),
        ).fetchall()
        assert group == [(False, True, True, "Equipe")]
        # select=*,grupos(*,mensagens(*)) as PostgREST embeds it, and the summaries and usage.
        embedded = conn.execute(
            "SELECT u.id, g.id, count(m.id) FROM usuarios u JOIN grupos g ON g.usuario_id = u.id"
            " LEFT JOIN mensagens m ON m.grupo_id = g.id GROUP BY u.id, g.id"
        ).fetchall()
        assert embedded == [(a.user, a.group, 2)]
        assert one(conn, "SELECT conteudo FROM resumos") == "summary of a"
        assert one(conn, "SELECT sum(tokens_entrada) FROM uso_tokens") == 100


def test_a_later_blanket_grant_does_not_reopen_the_plan(fresh_supabase: Supabase) -> None:
    """Supabase guides often 'fix' permissions with GRANT ALL; the policies and the trigger
    still hold every platform column and ledger."""
    with psycopg.connect(fresh_supabase.database.admin_url, autocommit=True) as conn:
        conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated")
    s = fresh_supabase

    assert attempt(s, "UPDATE usuarios SET tokens_mes = 2147483647") == "denied"
    assert attempt(s, "UPDATE usuarios SET instancia = 'unclaimed-instance'") == "denied"
    assert attempt(s, "UPDATE grupos SET usuario_id = %s", (s.b.user,)) == "denied"
    forged = "INSERT INTO resumos (grupo_id, usuario_id, status) VALUES (%s, %s, 'pendente')"
    assert attempt(s, forged, (s.b.group, s.a.user)) == "denied"
    second_account = "INSERT INTO usuarios (auth_id, instancia) VALUES (%s, 'unclaimed')"
    assert attempt(s, second_account, (AUTH_A,)) == "denied"
    for table in ("uso_tokens", "resumos", "mensagens", "usuarios", "grupos"):
        assert attempt(s, f"DELETE FROM {table}") == 0, table  # noqa: S608
    assert attempt(s, "SELECT * FROM procrastinate_jobs") == 0
    # The preferences still work.
    assert attempt(s, "UPDATE usuarios SET \"horaResumo\" = '06:00'") == 1
    assert owner_reads(s, "SELECT tokens_mes, instancia FROM usuarios ORDER BY instancia") == [
        (100000, "inst-a"),
        (100000, "inst-b"),
    ]


def test_the_backend_as_table_owner_still_reads_and_writes_everything(
    fresh_supabase: Supabase,
) -> None:
    with psycopg.connect(fresh_supabase.database.url) as conn:
        # Neither a superuser nor BYPASSRLS: it passes because it owns the tables.
        assert conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False, False)
        counts = {
            table: one(conn, f"SELECT count(*) FROM {table}")  # noqa: S608
            for table in (*READABLE, "alteracoes_pendentes", "procrastinate_jobs")
        }
        assert counts == {
            "usuarios": 2,
            "grupos": 2,
            "mensagens": 4,
            "resumos": 2,
            "uso_tokens": 2,
            "resumos_dono": 2,
            "alteracoes_pendentes": 2,
            "procrastinate_jobs": 1,
        }
        conn.execute("UPDATE usuarios SET tokens_mes = 5, instancia = instancia || '-x'")
        conn.execute("DELETE FROM uso_tokens")


# -- every table, now and later -------------------------------------------------------------------


def test_every_table_has_row_level_security_and_no_unexpected_privilege(
    supabase: Supabase,
) -> None:
    assert tables_without_rls(supabase.database) == set()
    assert api_privileges(supabase.database) == EXPECTED_PRIVILEGES


def test_a_table_a_later_migration_forgets_to_lock_down_is_caught(
    fresh_supabase: Supabase,
) -> None:
    """What the check above reports when a new migration creates a table and a function without
    the lock-down helper — and that the helper is the fix."""
    database = fresh_supabase.database
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE novidades (id bigserial PRIMARY KEY, texto text)")
        conn.execute("CREATE FUNCTION intellizap_novo() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$")

    assert tables_without_rls(database) == {"novidades"}
    leaked = api_privileges(database) - EXPECTED_PRIVILEGES
    assert {(grantee, obj) for grantee, obj, _ in leaked} == {
        (role, obj)
        for role in API_ROLES
        for obj in ("novidades", "novidades_id_seq", "intellizap_novo()")
    } | {("PUBLIC", "intellizap_novo()")}
    assert ("authenticated", "novidades", "TRUNCATE") in leaked

    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(lock_down_sql("novidades"))
        conn.execute(lock_down_functions_sql("intellizap_"))

    assert tables_without_rls(database) == set()
    assert api_privileges(database) == EXPECTED_PRIVILEGES


def test_the_lock_down_helper_accepts_only_plain_names() -> None:
    with pytest.raises(ValueError, match="plain lower-case"):
        lock_down_sql("envios'; DROP TABLE usuarios; --")
    with pytest.raises(ValueError, match="plain lower-case"):
        lock_down_functions_sql("x%")


def test_migrating_again_and_replaying_keeps_exactly_the_matrix(fresh_supabase: Supabase) -> None:
    database = fresh_supabase.database
    before = api_privileges(database)

    migrate.upgrade(database.url)
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("DROP TABLE alembic_version")
    migrate.upgrade(database.url)  # every migration again, 0001's FOR ALL policies included

    assert api_privileges(database) == before == EXPECTED_PRIVILEGES
    assert tables_without_rls(database) == set()
    with psycopg.connect(database.url) as conn:
        policies = conn.execute(
            "SELECT tablename, policyname, cmd FROM pg_policies WHERE schemaname = 'public'"
            " ORDER BY 1, 2"
        ).fetchall()
    assert policies == sorted(
        [(t, "intellizap_select", "SELECT") for t in READABLE]
        + [(t, "intellizap_update", "UPDATE") for t in ("grupos", "usuarios")]
    )
    assert attempt(fresh_supabase, "UPDATE usuarios SET tokens_mes = NULL") == "denied"


# -- rows written before the migration ----------------------------------------------------------


def test_a_summary_forged_before_the_migration_is_kept_reported_and_shown_to_nobody(
    migration_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = create_database(migration_server, legacy=True, supabase_auth=True)
    attacker, victim = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database.url) as conn:
        for user, auth in ((attacker, AUTH_A), (victim, AUTH_B)):
            conn.execute(
                "INSERT INTO usuarios (id, auth_id, instancia) VALUES (%s, %s, %s)",
                (user, auth, f"inst-{user}"),
            )
        group = one(
            conn,
            "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo)"
            " VALUES ('120363400000000001@g.us', %s, true) RETURNING id",
            (victim,),
        )
        forged = one(
            conn,
            "INSERT INTO resumos (grupo_id, usuario_id, conteudo, status)"
            " VALUES (%s, %s, 'the victim''s chat', 'enviado') RETURNING id",
            (group, attacker),
        )

    migrate.upgrade(database.url)  # a warning, not a failure

    assert "1 resumos rows name a group of another account" in caplog.text

    with psycopg.connect(database.url) as conn:
        assert one(conn, "SELECT count(*) FROM resumos WHERE id = %s", (forged,)) == 1
        # New rows are checked, whoever writes them (here: the backend's own role).
        with pytest.raises(errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO resumos (grupo_id, usuario_id, status) VALUES (%s, %s, 'pendente')",
                (group, attacker),
            )
    for auth in (AUTH_A, AUTH_B):
        with api_request(database, sub=auth) as conn:
            assert one(conn, "SELECT count(*) FROM resumos") == 0
