"""Group commit: concurrent webhook requests share one INSERT and one COMMIT.

Each request hands its row to :meth:`MessageWriter.write` and waits; flusher tasks take every row
queued at that moment, insert them in one statement, commit, and only then answer each waiting
request. A 2xx therefore still means "committed", but a burst of N requests costs one round trip
and one fsync instead of N. The edits and deletes that arrived before their message are applied
right after the commit (see :mod:`intellizap.ingest.changes`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from intellizap.db.engine import Database, DatabaseUnavailable, is_connection_error
from intellizap.ingest.changes import apply_pending_changes
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


# One statement inserts the batch and says whether any of its messages has an edit or delete
# waiting (almost never): only then is a second transaction spent applying it.
_INSERT = text(
    """
    WITH batch AS (
        SELECT * FROM unnest(CAST(:group_ids AS uuid[]), CAST(:external_ids AS varchar[]),
                             CAST(:texts AS text[]), CAST(:author_names AS varchar[]),
                             CAST(:author_numbers AS varchar[]), CAST(:sent_ats AS timestamptz[]),
                             CAST(:kinds AS varchar[]), CAST(:from_mes AS boolean[]))
            AS b (grupo_id, id_externo, mensagem, nome, numero, data_mensagem, tipo, por_mim)
    ),
    inserted AS (
        INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor", "numero-autor",
                               data_mensagem, tipo, enviada_por_mim)
        SELECT * FROM batch
        ON CONFLICT (grupo_id, id_externo) DO NOTHING
        RETURNING grupo_id, id_externo, id
    )
    SELECT grupo_id, id_externo, id, false AS pending FROM inserted
    UNION ALL
    SELECT NULL, NULL, NULL, true WHERE EXISTS (
        SELECT 1 FROM alteracoes_pendentes p JOIN batch b USING (grupo_id, id_externo)
    )
    """
)

_Key = tuple[uuid.UUID, str]


@dataclass(slots=True)
class _Pending:
    row: NewMessage
    future: asyncio.Future[WriteResult]


class MessageWriter:
    """Batches concurrent message inserts into shared transactions."""

    def __init__(self, database: Database, *, max_batch: int = 500, flushers: int = 2) -> None:
        self._database = database
        self._max_batch = max_batch
        self._flushers = flushers
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_forever(), name=f"message-writer-{n}")
            for n in range(self._flushers)
        ]

    async def stop(self) -> None:
        """Finish the queued writes, then stop the flushers."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def write(self, row: NewMessage) -> WriteResult:
        """Store ``row`` and return once it is committed (or known to be a duplicate).

        Raises :class:`DatabaseUnavailable` when the database cannot be reached.
        """
        if not self._tasks:
            raise RuntimeError("MessageWriter.start() was not called")
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(row, future))
        return await future

    async def _flush_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._flush(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            results = await self._insert([item.row for item in batch])
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
                await self._flush([item])
            return
        claimed: set[_Key] = set()
        for item in batch:
            key = (item.row.group_id, item.row.external_id)
            message_id = results.get(key)
            # A key repeated within one batch is stored once: the first request claims it.
            stored = message_id is not None and key not in claimed
            claimed.add(key)
            if not item.future.done():
                item.future.set_result(WriteResult(stored, message_id if stored else None))

    async def _insert(self, rows: Sequence[NewMessage]) -> dict[_Key, uuid.UUID]:
        params = {
            "group_ids": [row.group_id for row in rows],
            "external_ids": [row.external_id for row in rows],
            "texts": [row.text for row in rows],
            "author_names": [row.author_name for row in rows],
            "author_numbers": [row.author_number for row in rows],
            "sent_ats": [row.sent_at for row in rows],
            "kinds": [row.kind for row in rows],
            "from_mes": [row.from_me for row in rows],
        }
        async with self._database.engine.begin() as conn:
            rows_back = (await conn.execute(_INSERT, params)).all()
        if any(row.pending for row in rows_back):
            # After the commit, so an edit committed concurrently is never missed (changes.py).
            # Duplicates are included: a retried webhook heals a change left pending earlier.
            try:
                await apply_pending_changes(
                    self._database, [(row.group_id, row.external_id) for row in rows]
                )
            except Exception as exc:  # the messages are committed; the change waits
                log.warning("could not apply pending edits/deletes yet", error=str(exc))
        return {(row[0], row[1]): row[2] for row in rows_back if not row.pending}
