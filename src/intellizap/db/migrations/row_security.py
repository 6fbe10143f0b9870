"""Supabase lock-down shared by the migrations: internal tables are nobody's but the backend's.

Supabase exposes the ``public`` schema through its REST API (PostgREST) and, by default, grants
``ALL`` on every table, sequence and function created there to the API roles ``anon`` and
``authenticated`` (``ALTER DEFAULT PRIVILEGES``). Row-level security without a policy hides rows,
but not from ``TRUNCATE``, and a privilege left in place is one mistake away from a hole. So every
table the backend creates for itself gets, where an ``auth`` schema exists (Supabase):

- row-level security enabled (and no policy: no rows for anyone but its owner);
- every privilege of ``PUBLIC``, ``anon`` and ``authenticated`` revoked, on the table (which also
  revokes column privileges), and on the sequences its columns own.

A migration that creates a table calls :func:`lock_down_internal_table` right after it; the
migration tests check that every table in ``public`` ends up either locked down or in the
customer matrix of docs/security.md, so a table that forgets is caught.

The backend connects as the tables' owner, which row-level security and these revokes do not
affect; ``service_role`` (Supabase's own admin key, which bypasses row-level security) is left as
Supabase configured it.
"""

from __future__ import annotations

import re

from alembic import op

#: Supabase's API roles. They only exist on Supabase; every statement checks.
API_ROLES = ("anon", "authenticated")

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")

# Grantees are PUBLIC plus whichever API roles exist. Sequences owned by the table's columns
# (serial, identity) are found through pg_depend ('a': serial/owned by, 'i': identity).
_LOCK_DOWN = """
DO $$
DECLARE
    target regclass := to_regclass(quote_ident({table}));
    grantee text;
    seq regclass;
BEGIN
    IF target IS NULL OR NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    FOR grantee IN
        SELECT 'PUBLIC' UNION ALL
        SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
    LOOP
        EXECUTE format('REVOKE ALL ON TABLE %s FROM %s', target, grantee);
        FOR seq IN
            SELECT d.objid::regclass FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
              AND d.refobjid = target AND d.deptype IN ('a', 'i') AND s.relkind = 'S'
        LOOP
            EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM %s', seq, grantee);
        END LOOP;
    END LOOP;
END $$;
"""

# Functions in public are callable through PostgREST's /rpc/ as whoever asks. Ours run with the
# caller's rights and touch only locked tables, so a call would fail anyway; nobody but the
# backend has a reason to call them. Triggers still fire: EXECUTE is checked when a trigger is
# created, not when it fires.
_LOCK_DOWN_FUNCTIONS = """
DO $$
DECLARE
    fn regprocedure;
    grantee text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
        RETURN;
    END IF;
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = current_schema()::regnamespace AND starts_with(p.proname, {prefix})
    LOOP
        FOR grantee IN
            SELECT 'PUBLIC' UNION ALL
            SELECT quote_ident(rolname) FROM pg_roles WHERE rolname IN ('anon', 'authenticated')
        LOOP
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM %s', fn, grantee);
        END LOOP;
    END LOOP;
END $$;
"""


def _literal(name: str) -> str:
    """``name`` as an SQL string literal; only plain identifiers are accepted (they are code
    constants, but a quote in one must never become SQL)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain lower-case table or function name")
    return f"'{name}'"


def lock_down_sql(table: str) -> str:
    """The SQL of :func:`lock_down_internal_table` (for callers without an Alembic context)."""
    return _LOCK_DOWN.format(table=_literal(table))


def lock_down_functions_sql(prefix: str) -> str:
    """The SQL of :func:`lock_down_internal_functions`."""
    return _LOCK_DOWN_FUNCTIONS.format(prefix=_literal(prefix))


def lock_down_internal_table(table: str) -> None:
    """Make ``table`` the backend's alone on Supabase (no-op elsewhere, and if it is missing).
    Idempotent: call it in the migration that creates the table."""
    op.execute(lock_down_sql(table))


def lock_down_internal_functions(prefix: str) -> None:
    """Revoke ``EXECUTE`` on every function named ``prefix…`` in the current schema from
    ``PUBLIC``, ``anon`` and ``authenticated`` on Supabase (no-op elsewhere). Idempotent."""
    op.execute(lock_down_functions_sql(prefix))
