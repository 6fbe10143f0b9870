"""The job queue's own pool: autocommit connections, checked without a round trip, and still
replaced when the server ended one while it sat idle (a restart, a failover, a terminate)."""

from __future__ import annotations

import asyncio

import psycopg

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.jobs import QUEUE_APPLICATION_NAME
from intellizap.task_modules import connect_queue

TASK = "recover_stalled_jobs"  # any task: no worker runs here, the jobs only wait


async def queue_backends(admin: psycopg.AsyncConnection) -> list[int]:
    rows = await (
        await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (QUEUE_APPLICATION_NAME,),
        )
    ).fetchall()
    return [int(pid) for (pid,) in rows]


async def waiting_jobs(admin: psycopg.AsyncConnection) -> int:
    row = await (
        await admin.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s", (TASK,))
    ).fetchone()
    return int(row[0]) if row else 0


async def test_a_pooled_connection_the_server_ended_is_replaced_and_the_defer_succeeds(
    clean_database: Database, database_url: str
) -> None:
    async with (
        connect_queue(database_url, pool_size=1).open_async() as queue,
        await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin,
    ):
        assert await jobs.defer(queue, TASK, args={"timestamp": 1}) is not None
        # One statement per call, no BEGIN and COMMIT around it.
        async with queue.connector.pool.connection() as pooled:
            assert pooled.autocommit
        backends = await queue_backends(admin)
        assert backends

        for pid in backends:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        remaining = backends
        async with asyncio.timeout(10):
            while remaining:
                await asyncio.sleep(0.05)
                remaining = await queue_backends(admin)

        # The only pooled connection is dead; the check sees the server's goodbye on its socket
        # and the pool hands out a new one instead of failing the defer.
        assert await jobs.defer(queue, TASK, args={"timestamp": 2}) is not None
        assert await waiting_jobs(admin) == 2
        assert len(await queue_backends(admin)) == 1
