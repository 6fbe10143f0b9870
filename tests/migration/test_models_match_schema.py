"""``db/models.py`` against the schema the migrations create, both ways.

The models are the one description of the shared tables: every mapped column must exist with a
compatible type, and every column the migrations create in a mapped table must be mapped, so the
two cannot drift. Tables the migrations create but the models do not map are listed below, each
with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from intellizap.db import migrate
from intellizap.db.models import Base

from .conftest import MigrationDatabase, create_database

NewDatabase = Callable[..., MigrationDatabase]

#: Tables the migrations create that models.py deliberately does not map.
UNMAPPED_TABLES = frozenset(
    {
        # Alembic's own bookkeeping.
        "alembic_version",
        # The job queue's tables (procrastinate's schema, applied by our migrations).
        "procrastinate_jobs",
        "procrastinate_events",
        "procrastinate_periodic_defers",
        "procrastinate_workers",
    }
)

#: SQLAlchemy type -> the ``information_schema.columns`` (data_type, udt_name) it may be.
COMPATIBLE_TYPES: dict[type[TypeEngine[Any]], set[tuple[str, str]]] = {
    Uuid: {("uuid", "uuid")},
    String: {("character varying", "varchar"), ("text", "text")},
    Text: {("text", "text"), ("character varying", "varchar")},
    Boolean: {("boolean", "bool")},
    SmallInteger: {("smallint", "int2")},
    Integer: {("integer", "int4")},
    BigInteger: {("bigint", "int8")},
    Float: {("double precision", "float8"), ("real", "float4"), ("numeric", "numeric")},
    Date: {("date", "date")},
    Time: {("time without time zone", "time")},
    JSONB: {("jsonb", "jsonb")},
}

#: Columns whose database type is deliberately not the mapped one.
TYPE_EXCEPTIONS: dict[str, set[tuple[str, str]]] = {
    # The status_resumo enum, mapped as String so the code also works on a pre-existing database
    # whose column type differs (see models.Summary.status).
    "resumos.status": {("USER-DEFINED", "status_resumo")},
    "resumos_dono.status": {("USER-DEFINED", "status_resumo")},
}


def compatible(column_type: TypeEngine[Any]) -> set[tuple[str, str]]:
    """The database types a mapped column's type may be stored as."""
    if isinstance(column_type, ARRAY):  # e.g. text[]: data_type ARRAY, udt_name _text
        return {("ARRAY", f"_{udt}") for _, udt in compatible(column_type.item_type)}
    if isinstance(column_type, DateTime):
        if column_type.timezone:
            return {("timestamp with time zone", "timestamptz")}
        return {("timestamp without time zone", "timestamp")}
    # Most specific first: SmallInteger and BigInteger are Integers, Text is a String.
    for mapped in sorted(COMPATIBLE_TYPES, key=lambda t: -len(t.__mro__)):
        if isinstance(column_type, mapped):
            return COMPATIBLE_TYPES[mapped]
    raise AssertionError(f"no database type known for {column_type!r}: add it to the test")


@pytest.fixture(scope="module")
def schema(migration_server: str) -> dict[str, dict[str, tuple[str, str]]]:
    """table -> column -> (data_type, udt_name) of a freshly migrated database's public schema."""
    database = create_database(migration_server)
    migrate.upgrade(database.url)
    with psycopg.connect(database.url) as conn:
        rows = conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type, c.udt_name"
            " FROM information_schema.columns c JOIN information_schema.tables t"
            " USING (table_schema, table_name)"
            " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
        ).fetchall()
    tables: dict[str, dict[str, tuple[str, str]]] = {}
    for table, column, data_type, udt in rows:
        tables.setdefault(table, {})[column] = (data_type, udt)
    return tables


def test_every_mapped_column_exists_with_a_compatible_type(
    schema: dict[str, dict[str, tuple[str, str]]],
) -> None:
    problems = []
    for table in Base.metadata.sorted_tables:
        existing = schema.get(table.name)
        if existing is None:
            problems.append(f"{table.name}: mapped, but no migration creates it")
            continue
        for column in table.columns:
            name = f"{table.name}.{column.name}"
            actual = existing.get(column.name)
            if actual is None:
                problems.append(f"{name}: mapped, but no migration creates it")
                continue
            allowed = TYPE_EXCEPTIONS.get(name) or compatible(column.type)
            if actual not in allowed:
                problems.append(f"{name}: mapped as {column.type!r}, but the database has {actual}")
    assert problems == []


def test_every_migrated_column_of_a_mapped_table_is_mapped(
    schema: dict[str, dict[str, tuple[str, str]]],
) -> None:
    unmapped = [
        f"{table.name}.{column}"
        for table in Base.metadata.sorted_tables
        for column in sorted(schema.get(table.name, {}))
        if column not in table.columns
    ]
    assert unmapped == []


def test_every_migrated_table_is_mapped_or_deliberately_left_out(
    schema: dict[str, dict[str, tuple[str, str]]],
) -> None:
    mapped = set(Base.metadata.tables)
    unmapped = set(schema) - mapped - UNMAPPED_TABLES
    assert sorted(unmapped) == []


def test_the_allow_list_names_only_tables_that_exist(
    schema: dict[str, dict[str, tuple[str, str]]],
) -> None:
    """A stale entry would hide the next real gap."""
    assert sorted(UNMAPPED_TABLES - set(schema)) == []
