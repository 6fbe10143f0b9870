"""The SQL of the send ledger (``envios``, ``mensagens_enviadas``; :mod:`.send_ledger` has its
states and rows): recording a message's parts, a send job's attempts and outcomes, the echoes
that settle a send whose outcome is unknown (:mod:`.send_witnesses`), and housekeeping."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession

from intellizap.db.engine import Database
from intellizap.evolution.send_ledger import (
    Completion,
    Send,
    Status,
    chat_jid_of,
    fingerprint,
)

_CLAIMED = sql(
    "SELECT id_externo FROM envios WHERE usuario_id = :tenant_id AND id_externo IN :ids"
).bindparams(bindparam("ids", expanding=True))


async def confirming_message_ids(
    session: AsyncSession, tenant_id: uuid.UUID, message_ids: list[str]
) -> set[str]:
    """Which of these WhatsApp message ids already confirm one of the tenant's sends."""
    rows = await session.execute(_CLAIMED, {"tenant_id": tenant_id, "ids": message_ids})
    return set(rows.scalars())


_ECHO = sql(
    """
    UPDATE envios e
    SET status = 'enviado', id_externo = :message_id,
        respondido_em = COALESCE(e.respondido_em, now()), concluido_em = now(), texto = NULL,
        erro = NULL
    FROM (
        SELECT id FROM envios
        WHERE usuario_id = :tenant_id AND status = 'enviando' AND destino_jid = :chat_jid
          AND texto_hash = :hash AND postado_em <= CAST(:sent_at AS timestamptz) + :skew
          AND NOT EXISTS (
              SELECT 1 FROM envios o
              WHERE o.usuario_id = :tenant_id AND o.id_externo = :message_id
          )
        ORDER BY postado_em DESC
        LIMIT 1
        FOR UPDATE
    ) target
    WHERE e.id = target.id
    RETURNING e.id
    """
)


async def settle_by_echo(session: AsyncSession, params: dict[str, Any]) -> int | None:
    """Mark ``enviado`` the newest send whose outcome is unknown that this echo (``tenant_id``,
    ``chat_jid``, ``hash``, ``message_id``, ``sent_at``, ``skew``) matches; its id, or None."""
    matched: int | None = (await session.execute(_ECHO, params)).scalar_one_or_none()
    return matched


async def record_our_own(session: AsyncSession, params: dict[str, Any]) -> None:
    """Remember ``message_id`` as the backend's own message (never summarised)."""
    await session.execute(_OUR_OWN, params)


# -- queueing ---------------------------------------------------------------------------------------

_RECORD = sql(
    """
    WITH inserted AS (
        INSERT INTO envios (chave, usuario_id, lote, parte, partes, numero, destino_jid, texto,
                            texto_hash, citacao, ao_concluir, mencoes)
        SELECT format('%s:%s', CAST(:batch AS text), p.n - 1), CAST(:tenant_id AS uuid),
               CAST(:batch AS text), p.n - 1, CAST(:parts AS integer), CAST(:number AS text),
               CAST(:chat_jid AS text), p.texto, p.hash,
               CASE WHEN p.n = 1 THEN CAST(:quote AS jsonb) END, CAST(:on_done AS jsonb),
               NULLIF(ARRAY(
                   SELECT jsonb_array_elements_text(
                       CAST(:mentions AS jsonb) -> CAST(p.n - 1 AS integer))
               ), '{}')
        FROM unnest(CAST(:texts AS text[]), CAST(:hashes AS text[])) WITH ORDINALITY
            AS p (texto, hash, n)
        ON CONFLICT (chave) DO NOTHING
        RETURNING id, parte
    )
    -- The rows just written, and (a message queued again) those written before: the outer
    -- SELECT sees the table as it was when the statement began.
    SELECT id, parte FROM inserted
    UNION ALL
    SELECT id, parte FROM envios WHERE lote = CAST(:batch AS text)
    """
)


async def record(
    database: Database,
    *,
    tenant_id: uuid.UUID,
    key: str,
    number: str,
    parts: list[str],
    quote: dict[str, Any] | None,
    on_done: Completion | None,
    mentions: list[list[str]] | None = None,
) -> list[int]:
    """Record the parts of one message (``key``); returns their row ids, in order. Recording
    the same ``key`` again changes nothing: it is one message, sent once. ``mentions``: per
    part, the numbers it mentions."""
    if not parts:
        return []
    params = {
        "batch": key,
        "tenant_id": tenant_id,
        "parts": len(parts),
        "number": number,
        "chat_jid": chat_jid_of(number),
        "texts": [part.replace("\x00", "") for part in parts],
        "hashes": [fingerprint(part) for part in parts],
        "quote": orjson.dumps(quote).decode() if quote else None,
        "mentions": orjson.dumps(mentions or [[] for _ in parts]).decode(),
        "on_done": (
            orjson.dumps({"task": on_done.task, "args": on_done.args}).decode() if on_done else None
        ),
    }
    async with database.session() as session:
        rows = (await session.execute(_RECORD, params)).all()
    return [row[0] for row in sorted(rows, key=lambda row: row[1])]


# -- the send job -------------------------------------------------------------------------------

_COLUMNS = """
    id, usuario_id, lote, parte, partes, numero, destino_jid, texto, texto_hash, citacao,
    ao_concluir, status, tentativas, postado_em, id_externo, erro, now(), mencoes
"""
# One round trip for a send job's usual run: the row, whether an earlier part failed, when the
# instance may send next, the tenant's instance — and, when all allow it, the attempt begun
# (committed before the POST). ``envios.status`` is checked again under the row lock, so of two
# runs of the same send only one begins it.
_LOAD = sql(
    """
    WITH state AS (
        SELECT e.id, e.status,
            EXISTS (
                SELECT 1 FROM envios earlier
                WHERE earlier.lote = e.lote AND earlier.parte < e.parte
                  AND earlier.status IN ('falhou', 'cancelado')
            ) AS earlier_failed,
            (
                SELECT free_at FROM (
                    SELECT greatest(latest.postado_em, latest.respondido_em)
                           + make_interval(secs => :interval) AS free_at
                    FROM envios latest
                    WHERE latest.usuario_id = e.usuario_id AND latest.postado_em IS NOT NULL
                    ORDER BY latest.postado_em DESC
                    LIMIT 1
                ) pace
                WHERE free_at > now()
            ) AS busy_until
        FROM envios e WHERE e.id = :id
    ),
    began AS (
        UPDATE envios
        SET status = 'enviando', tentativas = envios.tentativas + 1, postado_em = now(),
            respondido_em = NULL, erro = NULL
        FROM state
        WHERE CAST(:begin AS boolean) AND envios.id = state.id AND envios.status = 'pendente'
          AND NOT state.earlier_failed AND state.busy_until IS NULL
        RETURNING envios.postado_em
    )
    SELECT e.id, e.usuario_id, e.lote, e.parte, e.partes, e.numero, e.destino_jid, e.texto,
           e.texto_hash, e.citacao, e.ao_concluir, e.status, e.tentativas, e.postado_em,
           e.id_externo, e.erro, now(), e.mencoes, state.earlier_failed, state.busy_until,
           (SELECT postado_em FROM began), u.instancia, u.evolution_token
    FROM envios e JOIN state ON state.id = e.id JOIN usuarios u ON u.id = e.usuario_id
    """
)


def _send(row: Any) -> Send:
    done = row[10]
    return Send(
        id=row[0],
        tenant_id=row[1],
        batch=row[2],
        part=row[3],
        parts=row[4],
        number=row[5],
        chat_jid=row[6],
        text=row[7],
        fingerprint=row[8],
        quote=row[9],
        on_done=Completion(task=done["task"], args=done["args"]) if done else None,
        status=Status(row[11]),
        attempts=row[12],
        posted_at=row[13],
        message_id=row[14],
        error=row[15],
        now=row[16],
        mentions=list(row[17] or ()),
        **(
            {
                "earlier_part_failed": bool(row[18]),
                "busy_until": row[19],
                "began_at": row[20],
                "instance": row[21] or None,
                "token": row[22] or None,
            }
            if len(row) > 18
            else {}
        ),
    )


async def load(
    database: Database, send_id: int, *, pacing: float = 0.0, begin: bool = False
) -> Send | None:
    """The send as it is now, with when its instance may send next (``pacing``: seconds between
    two POSTs of an instance). ``begin``: if it is waiting, its instance free and no earlier part
    failed, also begin its attempt (``began_at``); the POST must follow at once."""
    async with database.session() as session:
        row = (
            await session.execute(_LOAD, {"id": send_id, "interval": pacing, "begin": begin})
        ).first()
    return _send(row) if row is not None else None


_BEGIN = sql(
    """
    UPDATE envios
    SET status = 'enviando', tentativas = tentativas + 1, postado_em = now(),
        respondido_em = NULL, erro = NULL
    WHERE id = :id AND status = :status AND tentativas = :attempts
    RETURNING postado_em
    """
)


async def begin_attempt(database: Database, send: Send) -> datetime | None:
    """Record that a POST is about to be made (committed before it is). None when another run
    of the same send changed the row since it was read: that run decides."""
    async with database.session() as session:
        posted_at: datetime | None = (
            await session.execute(
                _BEGIN, {"id": send.id, "status": send.status.value, "attempts": send.attempts}
            )
        ).scalar_one_or_none()
    return posted_at


_RELEASE = sql(
    "UPDATE envios SET id_externo = NULL "
    "WHERE usuario_id = :tenant_id AND id_externo = :message_id AND id <> :id"
)
_SENT = sql(
    f"""
    UPDATE envios
    SET status = 'enviado', id_externo = COALESCE(:message_id, id_externo),
        respondido_em = COALESCE(respondido_em, now()), concluido_em = now(), texto = NULL,
        erro = NULL
    WHERE id = :id
    RETURNING {_COLUMNS}
    """  # noqa: S608 - the f-string only inserts the fixed column list
)
#: Records a message id as ours (also used when a witness settles a send).
_OUR_OWN = sql(
    "INSERT INTO mensagens_enviadas (id_externo, usuario_id) VALUES (:message_id, :tenant_id) "
    "ON CONFLICT DO NOTHING"
)


async def record_sent(database: Database, send: Send, message_id: str | None) -> Send:
    """The message went out (Evolution's answer said so, or its store has it); returns the send
    as recorded. Its id also goes to ``mensagens_enviadas``, so our own messages never end up in
    a summary."""
    params = {"id": send.id, "tenant_id": send.tenant_id, "message_id": message_id}
    async with database.session() as session:
        if message_id:
            # Evolution's answer outranks an echo matched to another row by its text.
            await session.execute(_RELEASE, params)
            await session.execute(_OUR_OWN, params)
        return _send((await session.execute(_SENT, params)).one())


_NOT_SENT = sql(
    f"""
    UPDATE envios
    SET status = :status, respondido_em = now(), erro = :reason,
        concluido_em = CASE WHEN :final THEN now() END,
        texto = CASE WHEN :final THEN NULL ELSE texto END
    WHERE id = :id
    RETURNING {_COLUMNS}
    """  # noqa: S608 - the f-string only inserts the fixed column list
)


async def record_not_sent(database: Database, send: Send, reason: str, *, final: bool) -> Send:
    """The message did not go out; ``final``: and it never will (``falhou``). Returns the send
    as recorded."""
    status = Status.FAILED if final else Status.PENDING
    async with database.session() as session:
        row = (
            await session.execute(
                _NOT_SENT,
                {"id": send.id, "status": status.value, "reason": reason[:500], "final": final},
            )
        ).one()
    return _send(row)


_UNKNOWN = sql(
    "UPDATE envios SET respondido_em = now(), erro = :reason WHERE id = :id AND status = 'enviando'"
)


async def record_unknown(database: Database, send: Send, reason: str) -> None:
    """The POST ended without saying whether the message went out: it stays ``enviando``."""
    async with database.session() as session:
        await session.execute(_UNKNOWN, {"id": send.id, "reason": reason[:500]})


_CANCEL = sql(
    """
    UPDATE envios SET status = 'cancelado', erro = :reason, concluido_em = now(), texto = NULL
    WHERE id = :id AND status IN ('pendente', 'enviando')
    """
)


async def cancel(database: Database, send: Send, reason: str) -> None:
    async with database.session() as session:
        await session.execute(_CANCEL, {"id": send.id, "reason": reason[:500]})


# -- housekeeping -------------------------------------------------------------------------------------

_FORGET = sql("DELETE FROM envios WHERE created_at < :before")


async def forget_before(database: Database, before: datetime) -> int:
    """Delete the ledger rows created before ``before``; returns how many."""
    async with database.session() as session:
        result = await session.execute(_FORGET, {"before": before})
    deleted: int = result.rowcount  # type: ignore[attr-defined]
    return deleted
