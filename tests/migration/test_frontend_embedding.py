"""The frontend embeds one table in another (``resumos?select=*,grupos(*)``) as PostgREST does:
through the foreign keys between them. PostgREST makes a relationship of each foreign key and
refuses an embedding that two of them could serve (``300 PGRST201``, "more than one
relationship was found"), so every pair of tables a signed-in user reads is joined by at most
one key, and the embedding joins on that key's columns.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from intellizap.db import migrate

from .conftest import api_request, create_database
from .supabase_tenants import AUTH_A, READABLE, Supabase, one

# Every foreign key between two tables the API roles read: (child, parent, child columns,
# parent columns), the columns in key order. PostgREST lists the same from pg_constraint.
RELATIONSHIPS = """
SELECT c.conrelid::regclass::text, c.confrelid::regclass::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k (attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n),
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k (attnum, n)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n)
FROM pg_constraint c
WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%(tables)s)
  AND c.confrelid::regclass::text = ANY(%(tables)s)
"""


def relationships(url: str) -> dict[tuple[str, str], list[tuple[list[str], list[str]]]]:
    """(child, parent) -> the column pairs of each foreign key from child to parent."""
    found: dict[tuple[str, str], list[tuple[list[str], list[str]]]] = {}
    with psycopg.connect(url) as conn:
        for child, parent, columns, referenced in conn.execute(
            RELATIONSHIPS, {"tables": list(READABLE)}
        ):
            found.setdefault((child, parent), []).append((columns, referenced))
    return found


def embedded(supabase: Supabase, child: str, parent: str) -> list[tuple[Any, ...]]:
    """``child?select=id,parent(id)`` as tenant A: each readable child row with its parent's id,
    joined on the one relationship's columns."""
    ((columns, referenced),) = relationships(supabase.database.url)[(child, parent)]
    condition = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
        for c, p in zip(columns, referenced, strict=True)
    )
    query = sql.SQL("SELECT c.id, (SELECT p.id FROM {} p WHERE {}) FROM {} c").format(
        sql.Identifier(parent), condition, sql.Identifier(child)
    )
    with api_request(supabase.database, sub=AUTH_A) as conn:
        return conn.execute(query).fetchall()


def test_every_pair_of_tables_the_frontend_reads_is_joined_by_one_key(supabase: Supabase) -> None:
    ambiguous = {
        pair: keys for pair, keys in relationships(supabase.database.url).items() if len(keys) > 1
    }
    assert ambiguous == {}


def test_a_summary_embeds_its_own_group_and_account(supabase: Supabase) -> None:
    a = supabase.a
    assert embedded(supabase, "resumos", "grupos") == [(a.summary, a.group)]
    assert embedded(supabase, "resumos", "usuarios") == [(a.summary, a.user)]
    # The key to grupos is the one that keeps a summary inside its own account.
    ((columns, referenced),) = relationships(supabase.database.url)[("resumos", "grupos")]
    assert (columns, referenced) == (["grupo_id", "usuario_id"], ["id", "usuario_id"])


def test_deleting_a_group_still_deletes_its_summaries(fresh_supabase: Supabase) -> None:
    a, b = fresh_supabase.a, fresh_supabase.b
    with psycopg.connect(fresh_supabase.database.url) as conn:
        conn.execute("DELETE FROM grupos WHERE id = %s", (a.group,))
        assert one(conn, "SELECT count(*) FROM resumos WHERE id = %s", (a.summary,)) == 0
        assert one(conn, "SELECT count(*) FROM resumos WHERE id = %s", (b.summary,)) == 1


def test_a_legacy_key_of_any_name_is_the_one_dropped(migration_server: str) -> None:
    """A frontend database may name its key to grupos otherwise; it is found by its columns."""
    database = create_database(migration_server, legacy=True)
    with psycopg.connect(database.url) as conn:
        conn.execute(
            "ALTER TABLE resumos ADD CONSTRAINT fk_resumo_grupo FOREIGN KEY (grupo_id)"
            " REFERENCES grupos (id) ON DELETE CASCADE"
        )
    with psycopg.connect(database.url, autocommit=True) as postgrest:
        postgrest.execute("LISTEN pgrst")  # what PostgREST listens to for schema changes
        migrate.upgrade(database.url)
        heard = [n.payload for n in postgrest.notifies(timeout=5, stop_after=1)]
    assert heard == ["reload schema"]  # so it sees the one relationship at once
    with psycopg.connect(database.url) as conn:
        names = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid = 'resumos'::regclass AND confrelid = 'grupos'::regclass"
        ).fetchall()
    assert names == [("resumos_grupo_da_conta_fkey",)]


def test_the_legacy_key_stays_while_summaries_name_another_accounts_group(
    migration_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows forged before migration 0007 leave the composite key unvalidated; the legacy key
    keeps deleting them with their group, and the operator is told what to do."""
    database = create_database(migration_server, legacy=True)
    with psycopg.connect(database.url) as conn:
        conn.execute(
            "ALTER TABLE resumos ADD CONSTRAINT fk_resumo_grupo FOREIGN KEY (grupo_id)"
            " REFERENCES grupos (id) ON DELETE CASCADE"
        )
        attacker, victim = (
            one(conn, "INSERT INTO usuarios (instancia) VALUES (%s) RETURNING id", (name,))
            for name in ("inst-attacker", "inst-victim")
        )
        group = one(
            conn,
            "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo)"
            " VALUES ('120363400000000001@g.us', %s, true) RETURNING id",
            (victim,),
        )
        conn.execute(
            "INSERT INTO resumos (grupo_id, usuario_id, status) VALUES (%s, %s, 'enviado')",
            (group, attacker),
        )
    migrate.upgrade(database.url)

    assert "PostgREST cannot embed grupos in resumos (PGRST201)" in caplog.text
    assert "DROP CONSTRAINT fk_resumo_grupo" in caplog.text
    with psycopg.connect(database.url) as conn:
        names = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid = 'resumos'::regclass AND confrelid = 'grupos'::regclass ORDER BY 1"
        ).fetchall()
        assert names == [("fk_resumo_grupo",), ("resumos_grupo_da_conta_fkey",)]
        conn.execute("DELETE FROM grupos WHERE id = %s", (group,))
        assert one(conn, "SELECT count(*) FROM resumos") == 0
