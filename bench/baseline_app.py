"""The bare baseline for ``bench/ingest.py``: one INSERT and one COMMIT per webhook.

A minimal FastAPI app with the same server set-up as the service (one uvicorn worker process,
uvloop + httptools when installed) and the least work that still stores a message: parse the JSON
body, insert one row into ``mensagens`` with a psycopg pool of 10 connections, answer 200. No
authentication, no tenant lookup, no validation, no batching.

    BASELINE_DATABASE_URL=postgresql://... BASELINE_GROUP_ID=<uuid> \
        python bench/baseline_app.py --port 8001
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

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

POOL_SIZE = 10


def create_app(database_url: str, group_id: uuid.UUID) -> FastAPI:
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
        body = orjson.loads(await request.body())
        data = body["data"]
        key = data["key"]
        participant = key.get("participant") or ""
        text = (data.get("message") or {}).get("conversation")
        sent_at = datetime.fromtimestamp(int(data["messageTimestamp"]), UTC)
        # The pool's context manager commits on exit: one transaction per request.
        async with pool.connection() as conn:
            await conn.execute(
                INSERT,
                (
                    group_id,
                    key["id"],
                    text,
                    data.get("pushName"),
                    participant.split("@", 1)[0] or None,
                    sent_at,
                    "texto",
                ),
            )
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(
        os.environ["BASELINE_DATABASE_URL"], uuid.UUID(os.environ["BASELINE_GROUP_ID"])
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
