"""Group commit: concurrent webhook requests share one INSERT and one COMMIT.

Each request hands its row to :meth:`MessageWriter.write` and waits; flusher tasks take every row
queued at that moment, insert them in one statement, commit, and only then answer each waiting
request. A 2xx therefore still means "committed", but a burst of N requests costs one round trip
and one fsync instead of N. The edits and deletes that arrived before their message are applied
right after the commit (see :mod:`intellizap.ingest.changes`).

Each flusher keeps one autocommit psycopg connection of its own, outside the engine's pool: the
batch is a single statement (its own transaction), so a flush is exactly one round trip, with no
pool checkout, BEGIN or COMMIT around it (bench/ingest.py). A connection that fails is dropped and
the next flush opens a new one, so a database restart costs the requests of one flush a 503.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg

from intellizap.db.engine import Database, DatabaseUnavailable, is_connection_error, libpq_url
from intellizap.ingest import repository
from intellizap.ingest.changes import apply_pending_changes
from intellizap.ingest.metrics import BATCH_SIZE
from intellizap.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A row for ``mensagens``."""

    group_id: uuid.UUID
    external_id: str
    text: str | None
    author_name: str | None
    author_number: str | None
    sent_at: datetime
    kind: str
    from_me: bool


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: bool
    """False when the message was already there (a duplicate webhook)."""
    message_id: uuid.UUID | None
    """The new row's id when stored."""


_Key = tuple[uuid.UUID, str]


@dataclass(slots=True)
class _Pending:
    row: NewMessage
    future: asyncio.Future[WriteResult]


class MessageWriter:
    """Batches concurrent message inserts into shared transactions."""

    def __init__(
        self,
        database: Database,
        *,
        max_batch: int = 500,
        flushers: int = 2,
        connect_timeout: float = 5.0,
    ) -> None:
        self._database = database
        self._max_batch = max_batch
        self._flushers = flushers
        self._connect_timeout = connect_timeout
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._connections: list[psycopg.AsyncConnection[tuple[object, ...]] | None] = []

    def start(self) -> None:
        self._connections = [None] * self._flushers
        self._tasks = [
            asyncio.create_task(self._flush_forever(n), name=f"message-writer-{n}")
            for n in range(self._flushers)
        ]

    async def stop(self) -> None:
        """Finish the queued writes, then stop the flushers and close their connections."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for conn in self._connections:
            if conn is not None:
                await conn.close()
        self._connections = []

    async def write(self, row: NewMessage) -> WriteResult:
        """Store ``row`` and return once it is committed (or known to be a duplicate).

        Raises :class:`DatabaseUnavailable` when the database cannot be reached.
        """
        if not self._tasks:
            raise RuntimeError("MessageWriter.start() was not called")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(row, future))
        return await future

    async def _flush_forever(self, flusher: int) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._flush(flusher, batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _flush(self, flusher: int, batch: list[_Pending]) -> None:
        try:
            results = await self._insert(flusher, [item.row for item in batch])
        except Exception as exc:
            if is_connection_error(exc) or len(batch) == 1:
                error = DatabaseUnavailable(str(exc)) if is_connection_error(exc) else exc
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                return
            # A row the database rejects must not fail the requests it was batched with.
            log.warning("batched insert failed, retrying rows one by one", error=str(exc))
            for item in batch:
                await self._flush(flusher, [item])
            return
        BATCH_SIZE.observe(len(batch))
        claimed: set[_Key] = set()
        for item in batch:
            key = (item.row.group_id, item.row.external_id)
            message_id = results.get(key)
            # A key repeated within one batch is stored once: the first request claims it.
            stored = message_id is not None and key not in claimed
            claimed.add(key)
            if not item.future.done():
                item.future.set_result(WriteResult(stored, message_id if stored else None))

    async def _connection(self, flusher: int) -> psycopg.AsyncConnection[tuple[object, ...]]:
        conn = self._connections[flusher]
        if conn is None or conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                libpq_url(self._database.url),
                autocommit=True,
                connect_timeout=max(1, int(self._connect_timeout)),
                options="-c timezone=UTC",
            )
            self._connections[flusher] = conn
        return conn

    async def _insert(self, flusher: int, rows: Sequence[NewMessage]) -> dict[_Key, uuid.UUID]:
        conn = await self._connection(flusher)
        try:
            rows_back = await repository.insert_messages(conn, orjson.dumps(rows).decode())
        except Exception as exc:
            if is_connection_error(exc) or conn.broken:
                self._connections[flusher] = None
                await conn.close()
            raise
        if any(pending for *_, pending in rows_back):
            # After the commit, so an edit committed concurrently is never missed (changes.py).
            # Duplicates are included: a retried webhook heals a change left pending earlier.
            try:
                await apply_pending_changes(
                    self._database, [(row.group_id, row.external_id) for row in rows]
                )
            except Exception as exc:  # the messages are committed; the change waits
                log.warning("could not apply pending edits/deletes yet", error=str(exc))
        return {
            (group_id, external_id): message_id
            for group_id, external_id, message_id, pending in rows_back
            if not pending
        }
