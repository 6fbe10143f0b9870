"""Two provisioned tenants on a migrated Supabase-like database, and requests made as them.

Tenant A is the attacker, tenant B the victim. Rows are written by the backend's role (the
owner); :func:`attempt` runs one statement as a PostgREST request of a signed-in user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb

from .conftest import MigrationDatabase, api_request

#: What a signed-in customer may do with their own rows (docs/security.md). Everything else —
#: insert, delete, other columns, other tables — is refused.
READABLE = ("usuarios", "grupos", "mensagens", "resumos", "uso_tokens", "resumos_dono")
WRITABLE_COLUMNS = {
    "usuarios": {
        "horaResumo",
        "fuso_horario",
        "transcricao_ativa",
        "key-openai",
        "resumo_membros",
        "idioma",
        "mencoes_ativas",
        "resumo_diario_dono",
        "numero_dono",
    },
    "grupos": {
        "ativo",
        "resumo_ativo",
        "transcricao_ativa",
        "nome",
        "resumo_destino",
        "idioma",
        "instrucoes_resumo",
        "resumo_semanal_dia",
        "resumo_semanal_hora",
    },
}
AUTH_A = uuid.UUID("a0000000-0000-4000-8000-00000000000a")
AUTH_B = uuid.UUID("b0000000-0000-4000-8000-00000000000b")


@dataclass(frozen=True)
class Tenant:
    auth_id: uuid.UUID
    user: uuid.UUID
    group: uuid.UUID
    messages: frozenset[uuid.UUID]
    summary: uuid.UUID
    usage: int
    digest: uuid.UUID

    def rows(self, table: str) -> set[Any]:
        return {
            "usuarios": {self.user},
            "grupos": {self.group},
            "mensagens": set(self.messages),
            "resumos": {self.summary},
            "uso_tokens": {self.usage},
            "resumos_dono": {self.digest},
        }[table]


@dataclass(frozen=True)
class Supabase:
    database: MigrationDatabase
    a: Tenant
    b: Tenant


def one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def insert_tenant(conn: psycopg.Connection[Any], auth_id: uuid.UUID, label: str) -> Tenant:
    """A provisioned tenant (plan, instance, token) with a group, messages, a summary, usage and
    a row in every internal table."""
    user = one(
        conn,
        "INSERT INTO usuarios (auth_id, instancia, evolution_token, tokens_mes, max_grupos,"
        ' "horaResumo") VALUES (%s, %s, %s, 100000, 3, %s) RETURNING id',
        (auth_id, f"inst-{label}", f"token-{label}", "20:00"),
    )
    group = one(
        conn,
        "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo) VALUES (%s, %s, true)"
        " RETURNING id",
        (f"1203634000000000{ord(label)}@g.us", user),
    )
    messages = frozenset(
        one(
            conn,
            "INSERT INTO mensagens (grupo_id, mensagem, id_externo, data_mensagem, tipo)"
            " VALUES (%s, %s, %s, now(), 'audio') RETURNING id",
            (group, f"hello from {label} #{n}", f"{label}-msg-{n}"),
        )
        for n in range(2)
    )
    summary = one(
        conn,
        "INSERT INTO resumos (grupo_id, usuario_id, conteudo, status)"
        " VALUES (%s, %s, %s, 'enviado') RETURNING id",
        (group, user, f"summary of {label}"),
    )
    usage = one(
        conn,
        "INSERT INTO uso_tokens (usuario_id, tipo, modelo, chave, tokens_entrada, resumo_id)"
        " VALUES (%s, 'resumo', 'gpt-4o-mini', 'plataforma', 100, %s) RETURNING id",
        (user, summary),
    )
    digest = one(
        conn,
        "INSERT INTO resumos_dono (usuario_id, data_referencia, conteudo, status)"
        " VALUES (%s, current_date, %s, 'enviado') RETURNING id",
        (user, f"digest of {label}"),
    )
    conn.execute(
        "INSERT INTO alteracoes_pendentes (grupo_id, id_externo, mensagem) VALUES (%s, %s, 'x')",
        (group, f"{label}-early-edit"),
    )
    conn.execute(
        "INSERT INTO audios_pendentes (mensagem_id, midia) VALUES (%s, %s)",
        (min(messages), Jsonb({"mediaKey": label})),
    )
    conn.execute(
        "INSERT INTO mensagens_enviadas (id_externo, usuario_id) VALUES (%s, %s)",
        (f"{label}-sent", user),
    )
    return Tenant(auth_id, user, group, messages, summary, usage, digest)


def populate(database: MigrationDatabase) -> Supabase:
    with psycopg.connect(database.url) as conn:
        a = insert_tenant(conn, AUTH_A, "a")
        b = insert_tenant(conn, AUTH_B, "b")
        worker = one(conn, "INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
        job = one(
            conn,
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, worker_id)"
            " VALUES ('summaries', 'summarize', %s, %s) RETURNING id",
            (Jsonb({"summary_id": str(b.summary)}), worker),
        )
        conn.execute(
            "INSERT INTO procrastinate_periodic_defers (task_name, defer_timestamp, job_id)"
            " VALUES ('summary_tick', 1, %s)",
            (job,),
        )
    return Supabase(database, a, b)


def attempt(
    supabase: Supabase,
    statement: str,
    params: tuple[Any, ...] = (),
    *,
    sub: uuid.UUID | None = AUTH_A,
    role: str = "authenticated",
) -> int | str:
    """Run ``statement`` as one API request; its row count, or ``"denied"``."""
    try:
        with api_request(supabase.database, sub=sub, role=role) as conn:
            return conn.execute(statement, params).rowcount  # type: ignore[arg-type]
    except errors.InsufficientPrivilege:
        return "denied"


def columns_of(supabase: Supabase, table: str) -> dict[str, bool]:
    """Every column of ``table`` -> whether it is ``GENERATED ALWAYS`` (only ``DEFAULT`` fits)."""
    with psycopg.connect(supabase.database.url) as conn:
        return {
            name: generated_always
            for name, generated_always in conn.execute(
                "SELECT column_name, identity_generation = 'ALWAYS' IS TRUE"
                " FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                (table,),
            )
        }


def tables_in_public(database: MigrationDatabase) -> set[str]:
    with psycopg.connect(database.url) as conn:
        return {
            row[0]
            for row in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relkind IN ('r', 'p', 'v', 'm', 'f')"
            )
        }
