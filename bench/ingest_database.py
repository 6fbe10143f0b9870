"""The database side of ``bench/ingest.py``: an embedded PostgreSQL in the run's temporary
directory (stopped on the way out), one tenant ``bench`` with every group active, and the check
that the rows stored under a run's tag match the requests answered 2xx."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg

from embedded_db import embedded_database as embedded_database
from loadgen import INSTANCE


def seed(url: str, jids: list[str]) -> list[uuid.UUID]:
    """One tenant ``bench`` with every group active; returns the group ids in ``jids`` order."""
    with psycopg.connect(url, autocommit=True) as conn:
        tenant_id = conn.execute(
            "INSERT INTO usuarios (instancia) VALUES (%s) RETURNING id", (INSTANCE,)
        ).fetchone()
        assert tenant_id is not None
        ids = []
        for jid in jids:
            row = conn.execute(
                "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo, nome) "
                "VALUES (%s, %s, true, %s) RETURNING id",
                (jid, tenant_id[0], f"bench {jid}"),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
    return ids


def count_rows(url: str, tag: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM mensagens WHERE id_externo LIKE %s", (f"{tag}-%",)
        ).fetchone()
    assert row is not None
    return int(row[0])


def check_rows(url: str, run: dict[str, Any], slack: int) -> None:
    """Rows stored under the run's tag vs requests answered 2xx (requests still in flight when
    the load stopped are stored but not counted by the client: up to ``slack`` more rows)."""
    time.sleep(0.5)
    rows = count_rows(url, run["tag"])
    answered = run["ok"] if "ok" in run else run["statuses"].get("200", 0)
    run["rows_stored"] = rows
    run["rows_ok"] = answered <= rows <= answered + slack
