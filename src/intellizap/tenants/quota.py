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
from intellizap.tenants.clock import local_day, tenant_zone

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
    audio_seconds: float
    """Seconds of voice notes transcribed in this cycle (either key)."""
    limit: int | None
    zone: ZoneInfo

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.used >= self.limit


_USAGE = text(
    """
    SELECT COALESCE(SUM(tokens_entrada + tokens_saida) FILTER (WHERE chave = 'plataforma'), 0),
           COALESCE(SUM(tokens_entrada + tokens_saida) FILTER (WHERE chave = 'propria'), 0),
           COALESCE(SUM(segundos_audio), 0)
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
        platform, own, audio = (
            await session.execute(_USAGE, {"tenant_id": tenant_id, "since": since})
        ).one()
    return QuotaStatus(
        cycle_start=since,
        used=int(platform),
        used_own_key=int(own),
        audio_seconds=float(audio),
        limit=limit,
        zone=zone,
    )


_ACCOUNT = text(
    'SELECT tokens_mes, "dia-renovacao-tokens", fuso_horario FROM usuarios WHERE id = :id'
)


async def account_usage(
    database: Database, *, tenant_id: uuid.UUID, default_zone: str, now: datetime
) -> QuotaStatus:
    """The tenant's usage in its current cycle, with its own limit, renewal day and zone."""
    async with database.session() as session:
        row = (await session.execute(_ACCOUNT, {"id": tenant_id})).one()
    limit, renewal_day, zone_name = row
    return await quota_status(
        database,
        tenant_id=tenant_id,
        limit=limit,
        renewal_day=renewal_day,
        zone=tenant_zone(zone_name, default_zone),
        now=now,
    )
