"""The bare baselines for ``bench/ingest.py``: one INSERT and one COMMIT per webhook.

A minimal FastAPI app with the same server set-up as the service (one uvicorn worker process,
uvloop + httptools when installed) and the least work that still stores a message: parse the JSON
body, insert one row into ``mensagens`` through a pool of 10 connections (the service's pool
size), answer 200. No authentication, no tenant lookup, no validation, no batching. Two drivers:

- ``--driver asyncpg`` (the strong baseline): asyncpg, the fastest PostgreSQL driver for asyncio,
  with its prepared-statement cache: per request one ``Bind/Execute`` round trip in autocommit;
- ``--driver psycopg``: psycopg 3's async pool, the driver the service itself uses.

    BASELINE_DATABASE_URL=postgresql://... BASELINE_GROUP_ID=<uuid> \
        python bench/baseline_app.py --port 8001 [--driver asyncpg]
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from psycopg_pool import AsyncConnectionPool

INSERT = """
    INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor", "numero-autor",
                           data_mensagem, tipo)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT DO NOTHING
"""
INSERT_ASYNCPG = """
    INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor", "numero-autor",
                           data_mensagem, tipo)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT DO NOTHING
"""

POOL_SIZE = 10


def _row(body: Any, group_id: uuid.UUID) -> tuple[object, ...]:
    data = body["data"]
    key = data["key"]
    participant = key.get("participant") or ""
    return (
        group_id,
        key["id"],
        (data.get("message") or {}).get("conversation"),
        data.get("pushName"),
        participant.split("@", 1)[0] or None,
        datetime.fromtimestamp(int(data["messageTimestamp"]), UTC),
        "texto",
    )


def create_asyncpg_app(database_url: str, group_id: uuid.UUID) -> FastAPI:
    """The bare route on asyncpg: one prepared INSERT per request, autocommitted."""
    pools: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            database_url,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            server_settings={"timezone": "UTC"},
        )
        pools.append(pool)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/evolution")
    async def webhook(request: Request) -> Response:
        row = _row(orjson.loads(await request.body()), group_id)
        await pools[0].execute(INSERT_ASYNCPG, *row)  # autocommit: one transaction per request
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def create_app(database_url: str, group_id: uuid.UUID) -> FastAPI:
    """The bare route on psycopg 3's async pool."""
    pool = AsyncConnectionPool(
        database_url,
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        open=False,
        kwargs={"options": "-c timezone=UTC"},
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/evolution")
    async def webhook(request: Request) -> Response:
        row = _row(orjson.loads(await request.body()), group_id)
        # The pool's context manager commits on exit: one transaction per request.
        async with pool.connection() as conn:
            await conn.execute(INSERT, row)
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--driver", choices=["asyncpg", "psycopg"], default="asyncpg")
    args = parser.parse_args()
    factory = create_asyncpg_app if args.driver == "asyncpg" else create_app
    app = factory(os.environ["BASELINE_DATABASE_URL"], uuid.UUID(os.environ["BASELINE_GROUP_ID"]))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
