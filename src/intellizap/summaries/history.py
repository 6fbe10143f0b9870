"""The recent summaries of a tenant, for operators (``intellizap usuarios show``): status and
reason, never the content."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from intellizap.db.engine import Database
from intellizap.summaries import repository


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


async def recent_summaries(
    database: Database, tenant_id: uuid.UUID, *, limit: int = 10
) -> list[SummaryRecord]:
    async with database.session() as session:
        rows = await repository.recent_summary_rows(session, tenant_id, limit)
    return [SummaryRecord(*row) for row in rows]
