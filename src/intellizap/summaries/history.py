"""The recent summaries of a tenant, for operators (``intellizap usuarios show``): status and
reason, never the content."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from intellizap.db.engine import Database


@dataclass(frozen=True, slots=True)
class SummaryRecord:
    id: uuid.UUID
    group_jid: str
    group_name: str | None
    origin: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    message_count: int | None
    tokens_used: int | None
    error: str | None


# The (usuario_id, …) filter walks each of the tenant's groups' (grupo_id, created_at) index.
_RECENT = text(
    """
    SELECT r.id, g.grupo_id_externo, g.nome, r.origem, CAST(r.status AS text), r.created_at,
           r.data_envio, r.total_mensagens, r.tokens_usados, r.erro
    FROM grupos g
    CROSS JOIN LATERAL (
        SELECT * FROM resumos WHERE grupo_id = g.id ORDER BY created_at DESC LIMIT :limit
    ) AS r
    WHERE g.usuario_id = :tenant_id
    ORDER BY r.created_at DESC
    LIMIT :limit
    """
)


async def recent_summaries(
    database: Database, tenant_id: uuid.UUID, *, limit: int = 10
) -> list[SummaryRecord]:
    async with database.session() as session:
        rows = (await session.execute(_RECENT, {"tenant_id": tenant_id, "limit": limit})).all()
    return [SummaryRecord(*row) for row in rows]


#: Summaries claimed or requested but not written yet, by origin: how many and how long the
#: oldest has waited. Read at every metrics scrape, so it goes through the partial index of
#: migration 0006 (only the few rows still waiting); older than two days they are abandoned
#: orphans (the sweep re-queues the last day's), not a queue.
WAITING_SQL = """
    SELECT origem, count(*), EXTRACT(EPOCH FROM now() - min(created_at))
    FROM resumos
    WHERE status = 'pendente' AND conteudo IS NULL AND created_at > now() - interval '2 days'
    GROUP BY origem
"""
