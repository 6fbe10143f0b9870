"""The job queue failing in the middle of a webhook whose message is already committed."""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.jobs import QUEUE_APPLICATION_NAME
from tests.conftest import make_settings, running_service, webhook_headers
from tests.factories import count
from tests.integration.test_transcription import tenant_with_transcription, voice_note_webhook

AUTH = webhook_headers()


async def queue_backend_waiting_on(admin: psycopg.AsyncConnection) -> int | None:
    row = await (
        await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock'",
            (QUEUE_APPLICATION_NAME,),
        )
    ).fetchone()
    return int(row[0]) if row else None


async def test_a_queue_error_after_the_message_is_stored_is_503_and_the_retry_queues_the_job(
    clean_database: Database, database_url: str
) -> None:
    """Before: 500, as for a bug. A 503 makes Evolution retry, and the retry (a duplicate of a
    stored message) queues the transcription the first delivery could not."""
    await tenant_with_transcription(clean_database)
    async with (
        running_service(make_settings(database_url)) as client,
        await psycopg.AsyncConnection.connect(database_url) as admin,
    ):
        # The queue's defer blocks behind a lock, and its connection is cut while it waits:
        # what a PostgreSQL failover does to a statement in flight.
        await admin.execute("LOCK TABLE procrastinate_jobs IN ACCESS EXCLUSIVE MODE")
        sending = asyncio.create_task(
            client.post("/webhooks/evolution", json=voice_note_webhook(), headers=AUTH)
        )
        pid = None
        async with asyncio.timeout(10):
            while pid is None:
                await asyncio.sleep(0.05)
                pid = await queue_backend_waiting_on(admin)
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        first = await sending
        await admin.rollback()

        assert first.status_code == 503, first.text
        assert "job queue" in first.json()["detail"]
        assert first.headers["retry-after"]
        assert await count(clean_database, "SELECT count(*) FROM mensagens") == 1
        assert await count(clean_database, "SELECT count(*) FROM procrastinate_jobs") == 0

        retry = await client.post("/webhooks/evolution", json=voice_note_webhook(), headers=AUTH)

        assert retry.status_code == 200, retry.text
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 1
    async with clean_database.session() as session:
        tasks = (await session.execute(text("SELECT task_name FROM procrastinate_jobs"))).all()
    assert [task for (task,) in tasks] == ["transcribe_audio"]
