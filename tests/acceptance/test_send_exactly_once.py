"""kill -9 of the worker at each step of a send: one message in the group every time.

Real ``intellizap worker`` processes against the fake Evolution. The steps:

- before the POST: the attempt is not yet recorded (the worker is stopped on the ledger row);
- the POST written but never acted on by Evolution (lost on the way);
- after the POST: Evolution sent the message, the worker dies before reading the answer;
- after the record: the outcome is committed, the worker dies before finishing the job.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import psycopg
import pytest
from sqlalchemy import text

from intellizap.db.engine import Database, libpq_url
from intellizap.evolution.sending import queue_text
from intellizap.summaries.delivery import on_delivery
from intellizap.task_modules import connect_queue
from tests.acceptance.test_jobs_durability import start_worker
from tests.conftest import wait_until
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.integration.test_sending import (
    CONTENT,
    GROUP,
    ledger,
    queue_summaries,
    summary_ready_to_send,
    summary_status,
)

WORKER_SETTINGS = {"SEND_OUTCOME_WAIT_SECONDS": "2"}


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        yield fake


class Workers:
    """Worker processes started by a test, all stopped at its end."""

    def __init__(self, database_url: str, evolution: FakeEvolution, openai: FakeOpenAI) -> None:
        self._args = (database_url, evolution, openai)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = start_worker(*self._args, **WORKER_SETTINGS)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.wait(15)


@pytest.fixture
def workers(
    database_url: str, evolution: FakeEvolution, openai_fake: FakeOpenAI
) -> Iterator[Workers]:
    started = Workers(database_url, evolution, openai_fake)
    try:
        yield started
    finally:
        started.stop()


def kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()  # SIGKILL: no clean-up, no goodbye
    process.wait(10)


async def queue_summary(database: Database, database_url: str) -> uuid.UUID:
    """A generated summary whose job (deliver it) is queued, as after a crash of the first run."""
    summary_id = await summary_ready_to_send(database)
    await queue_summaries(database_url, summary_id)
    return summary_id


async def queue_summary_send(database: Database, database_url: str) -> uuid.UUID:
    """A generated summary's send already queued (the ledger row exists), exactly as the
    summary job queues it."""
    summary_id = await summary_ready_to_send(database)
    async with database.session() as session:
        row = (
            await session.execute(
                text("SELECT r.usuario_id, r.conteudo FROM resumos r WHERE r.id = :id"),
                {"id": summary_id},
            )
        ).one()
    async with connect_queue(database_url).open_async() as queue:
        await queue_text(
            queue,
            database,
            tenant_id=row[0],
            number=GROUP,
            text=f"📝 *Resumo do grupo*\n\n{row[1]}",
            max_chars=3500,
            key=f"summary:{summary_id}",
            on_done=on_delivery(summary_id),
        )
    return summary_id


async def recorded_as_ours(database: Database) -> bool:
    """The send's outcome is committed (its message id is recorded as one of ours)."""
    async with database.session() as session:
        found = (
            await session.execute(text("SELECT count(*) FROM mensagens_enviadas"))
        ).scalar_one()
    return bool(found)


@asynccontextmanager
async def locked(database_url: str, statement: str) -> AsyncIterator[None]:
    """Hold ``statement``'s locks in an open transaction of our own until the block ends."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        await conn.execute(statement)
        try:
            yield
        finally:
            await conn.rollback()


async def waiting_on_a_lock(database: Database, statement: str) -> bool:
    """Whether a backend is blocked on a lock while running a query containing ``statement``."""
    async with database.session() as session:
        waiting = (
            await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE :q"
                ),
                {"q": f"%{statement}%"},
            )
        ).scalar_one()
    return bool(waiting)


async def end_blocked_statements(database: Database, statement: str) -> None:
    """End the killed worker's statements still waiting for our lock. A dead process runs no
    statement; only because we held a lock was one left waiting, and left alone it would go
    on (and commit) once the lock is released."""
    async with database.session() as session:
        await session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND query LIKE :q"
            ),
            {"q": f"%{statement}%"},
        )


async def sent_once(database: Database, evolution: FakeEvolution, summary_id: uuid.UUID) -> None:
    """Wait for the summary to be delivered, give a duplicate time to appear, then check."""

    async def delivered() -> bool:
        return (await summary_status(database, summary_id))[0] != "pendente"

    async def queue_drained() -> bool:  # the killed worker's job was run again, to its end
        async with database.session() as session:
            left = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                        " AND task_name IN ('summarize', 'send_text', 'summary_delivered')"
                    )
                )
            ).scalar_one()
        return not left

    await wait_until(delivered, within=90)
    await wait_until(queue_drained, within=90)
    await asyncio.sleep(1)
    [message] = evolution.sent_to(GROUP)
    assert message.text.startswith("📝 *Resumo do grupo*")
    assert CONTENT in message.text
    assert await summary_status(database, summary_id) == ("enviado", None)
    [row] = await ledger(database)
    assert row["status"] == "enviado"
    assert row["id_externo"] is not None


async def test_worker_killed_before_the_post_sends_once(
    clean_database: Database, database_url: str, evolution: FakeEvolution, workers: Workers
) -> None:
    summary_id = await queue_summary_send(clean_database, database_url)
    async with locked(database_url, "SELECT * FROM envios FOR UPDATE"):
        first = workers.start()
        await wait_until(lambda: waiting_on_a_lock(clean_database, "UPDATE envios"), 60)
        kill(first)
        await end_blocked_statements(clean_database, "UPDATE envios")
    assert evolution.sent == []
    workers.start()
    await sent_once(clean_database, evolution, summary_id)
    [row] = await ledger(clean_database)
    assert row["tentativas"] == 1  # the killed attempt was never recorded: no wait, no search


async def test_worker_killed_while_evolution_never_got_the_post_sends_once(
    clean_database: Database, database_url: str, evolution: FakeEvolution, workers: Workers
) -> None:
    summary_id = await queue_summary(clean_database, database_url)
    gate = evolution.lose_next_send()
    first = workers.start()
    assert await asyncio.to_thread(gate.wait_arrived, 60), "the worker never posted"
    kill(first)
    gate.release()  # Evolution answers a dead socket, having sent nothing
    workers.start()
    await sent_once(clean_database, evolution, summary_id)
    assert evolution.searches, "the new worker looked for the message before posting again"
    [row] = await ledger(clean_database)
    assert row["tentativas"] == 2


async def test_worker_killed_after_the_post_sends_once(
    clean_database: Database, database_url: str, evolution: FakeEvolution, workers: Workers
) -> None:
    summary_id = await queue_summary(clean_database, database_url)
    gate = evolution.hold_after_sending()
    first = workers.start()
    assert await asyncio.to_thread(gate.wait_arrived, 60), "the worker never posted"
    kill(first)  # the message is in the group; the worker never learnt it
    gate.release()
    workers.start()
    await sent_once(clean_database, evolution, summary_id)
    assert len(evolution.requests_to("/message/sendText/")) == 1
    [row] = await ledger(clean_database)
    assert row["tentativas"] == 1


async def test_worker_killed_after_recording_the_outcome_sends_once(
    clean_database: Database, database_url: str, evolution: FakeEvolution, workers: Workers
) -> None:
    summary_id = await queue_summary(clean_database, database_url)
    gate = evolution.hold_after_sending()
    first = workers.start()
    assert await asyncio.to_thread(gate.wait_arrived, 60), "the worker never posted"
    # Nothing may touch the job queue now: the worker records the outcome, then stops at the
    # queue (deferring the summary's completion, finishing the job) and is killed there.
    async with locked(database_url, "LOCK TABLE procrastinate_jobs IN EXCLUSIVE MODE"):
        gate.release()

        await wait_until(lambda: recorded_as_ours(clean_database), within=30)
        await wait_until(lambda: waiting_on_a_lock(clean_database, "procrastinate_"), 30)
        await asyncio.sleep(0.5)  # the send job itself is now stopped at the queue
        kill(first)
        await end_blocked_statements(clean_database, "procrastinate_")
    workers.start()
    await sent_once(clean_database, evolution, summary_id)
    assert len(evolution.requests_to("/message/sendText/")) == 1


async def test_the_worker_process_logs_its_jobs_with_their_tenant_and_group(
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    openai_fake: FakeOpenAI,
) -> None:
    """`intellizap worker` runs its jobs through the observing middleware: every line of a send
    job names its tenant and group, and none carries the message's text."""
    summary_id = await queue_summary_send(clean_database, database_url)
    with tempfile.TemporaryFile() as log_file:
        worker = start_worker(database_url, evolution, openai_fake, log_file, LOG_LEVEL="INFO")
        try:
            await wait_until(lambda: summary_delivered(clean_database, summary_id), within=60)
        finally:
            worker.terminate()
            worker.wait(30)
        log_file.seek(0)
        output = log_file.read().decode()
    async with clean_database.session() as session:
        tenant_id = (
            await session.execute(
                text("SELECT usuario_id FROM resumos WHERE id = :id"), {"id": summary_id}
            )
        ).scalar_one()
    lines = [line for line in output.splitlines() if "text sent" in line]
    assert lines, output[-2000:]
    assert all(f"usuario_id={tenant_id}" in line for line in lines)
    assert all("grupo_id=" in line for line in lines)
    assert "reunião foi remarcada" not in output


async def summary_delivered(database: Database, summary_id: uuid.UUID) -> bool:
    return (await summary_status(database, summary_id))[0] == "enviado"
