"""Monthly token quota (``tokens_mes``) on platform-key usage, renewing on
``"dia-renovacao-tokens"`` in the tenant's time zone. Usage is a sum over ``uso_tokens`` for the
current cycle: nothing is ever reset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.tenants.clock import local_day

QUOTA_EXCEEDED = "cota mensal de tokens excedida"


def cycle_start(today: date, renewal_day: int | None) -> date:
    """The first day of the quota cycle containing ``today``. Renewal days are 1–28 so every
    month has one; anything else is clamped into that range."""
    day = min(max(renewal_day or 1, 1), 28)
    if today.day >= day:
        return today.replace(day=day)
    previous_month = (today.month - 2) % 12 + 1
    year = today.year - 1 if today.month == 1 else today.year
    return date(year, previous_month, day)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    cycle_start: datetime
    used: int
    """Tokens spent on the platform key in this cycle."""
    used_own_key: int
    limit: int | None

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.used >= self.limit


_USAGE = text(
    """
    SELECT COALESCE(SUM(tokens_entrada + tokens_saida) FILTER (WHERE chave = 'plataforma'), 0),
           COALESCE(SUM(tokens_entrada + tokens_saida) FILTER (WHERE chave = 'propria'), 0)
    FROM uso_tokens WHERE usuario_id = :tenant_id AND created_at >= :since
    """
)


async def quota_status(
    database: Database,
    *,
    tenant_id: uuid.UUID,
    limit: int | None,
    renewal_day: int | None,
    zone: ZoneInfo,
    now: datetime,
) -> QuotaStatus:
    start_day = cycle_start(local_day(now, zone), renewal_day)
    since = datetime.combine(start_day, time.min, tzinfo=zone)
    async with database.session() as session:
        platform, own = (
            await session.execute(_USAGE, {"tenant_id": tenant_id, "since": since})
        ).one()
    return QuotaStatus(cycle_start=since, used=int(platform), used_own_key=int(own), limit=limit)
