"""Monthly token quota (``tokens_mes``) on platform-key usage, renewing on
``"dia-renovacao-tokens"`` in the tenant's time zone. Usage is a sum over ``uso_tokens`` for the
current cycle: nothing is ever reset.

Calls reserve before they spend (:func:`reserve`, then :func:`charge` per call and
:func:`release` at the end), so several summaries of one tenant running at once, or one summary
made of many calls, never spend more than what is left: the check and the reservation happen
under a per-tenant lock, against usage plus what running calls still hold (``reservas_tokens``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from intellizap.db.engine import Database
from intellizap.tenants import quota_repository as repository
from intellizap.tenants.clock import local_day, tenant_zone

QUOTA_EXCEEDED = "cota mensal de tokens excedida"
QUOTA_INSUFFICIENT = "cota mensal de tokens insuficiente"


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
        platform, own, audio = await repository.usage_since(session, tenant_id, since)
    return QuotaStatus(
        cycle_start=since,
        used=int(platform),
        used_own_key=int(own),
        audio_seconds=float(audio),
        limit=limit,
        zone=zone,
    )


async def account_usage(
    database: Database, *, tenant_id: uuid.UUID, default_zone: str, now: datetime
) -> QuotaStatus:
    """The tenant's usage in its current cycle, with its own limit, renewal day and zone."""
    async with database.session() as session:
        limit, renewal_day, zone_name = await repository.quota_settings(session, tenant_id)
    return await quota_status(
        database,
        tenant_id=tenant_id,
        limit=limit,
        renewal_day=renewal_day,
        zone=tenant_zone(zone_name, default_zone),
        now=now,
    )


# -- reserving before a call, settling after ---------------------------------------------------------


class QuotaRefused(Exception):
    """The call does not fit in what is left of the cycle: recorded, never retried."""

    transient = False


class QuotaBusy(Exception):
    """It would fit, but not with what calls running right now have reserved: retry when they
    are done (they give back what they do not use)."""

    transient = True


#: A reservation not settled this long after its last charge is from a process that died; it no
#: longer holds back the tenant's other calls.
RESERVATION_TTL = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Account:
    """What the quota of one tenant depends on."""

    tenant_id: uuid.UUID
    limit: int | None
    renewal_day: int | None
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class Reservation:
    """Tokens held for calls about to be made; ``id`` None when nothing needed holding (an own
    key, or no limit)."""

    id: uuid.UUID | None
    tenant_id: uuid.UUID
    tokens: int


@dataclass(frozen=True, slots=True)
class Usage:
    """One LLM call, as the provider billed it."""

    model: str
    input_tokens: int
    output_tokens: int


def _pt(number: int) -> str:
    return f"{number:,}".replace(",", ".")


def _cycle_since(account: Account, now: datetime) -> datetime:
    start_day = cycle_start(local_day(now, account.zone), account.renewal_day)
    return datetime.combine(start_day, time.min, tzinfo=account.zone)


async def reserve(
    database: Database, account: Account, tokens: int, *, platform_key: bool, now: datetime
) -> Reservation:
    """Hold ``tokens`` (an upper estimate of what the calls will spend) of the account's quota.

    Under a per-tenant lock: the tenant's calls reserve one after the other, each seeing what the
    others hold. Raises :class:`QuotaRefused` when the cycle's actual usage leaves less than
    ``tokens`` and :class:`QuotaBusy` when only the running calls' reservations are in the way.
    Only platform-key calls of a tenant with a limit hold anything.
    """
    if not platform_key or account.limit is None:
        return Reservation(None, account.tenant_id, tokens)
    async with database.session() as session:
        # The lock is its own statement: the next one's snapshot is taken after it is granted,
        # so it sees every reservation committed by whoever held it before.
        await repository.lock_tenant_quota(session, account.tenant_id)
        await repository.drop_expired_reservations(session, account.tenant_id)
        used, reserved = await repository.used_and_reserved(
            session, account.tenant_id, _cycle_since(account, now)
        )
        left = account.limit - used
        if left <= 0:
            raise QuotaRefused(QUOTA_EXCEEDED)
        if tokens > left:
            raise QuotaRefused(
                f"{QUOTA_INSUFFICIENT}: este resumo precisa de até {_pt(tokens)} tokens e "
                f"restam {_pt(left)} no ciclo"
            )
        if tokens > left - reserved:
            raise QuotaBusy(
                f"quota held by calls in progress: {tokens} needed, {left - reserved} free"
            )
        reservation_id = await repository.insert_reservation(
            session, account.tenant_id, tokens, ttl=RESERVATION_TTL
        )
    return Reservation(reservation_id, account.tenant_id, tokens)


async def charge(
    session: AsyncSession,
    reservation: Reservation,
    usage: Usage,
    *,
    key_owner: str,
    summary_id: uuid.UUID | None = None,
    kind: str = "resumo",
) -> None:
    """Record one call's real usage (``uso_tokens``, ``tipo`` = ``kind``) and take it off the
    reservation, in the caller's transaction."""
    await repository.record_usage(
        session,
        tenant_id=reservation.tenant_id,
        kind=kind,
        model=usage.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        key_owner=key_owner,
        summary_id=summary_id,
    )
    if reservation.id is not None:
        await repository.shrink_reservation(
            session,
            reservation.id,
            spent=usage.input_tokens + usage.output_tokens,
            ttl=RESERVATION_TTL,
        )


async def settle(session: AsyncSession, reservation: Reservation) -> None:
    """The calls are done and charged: give back the rest, in the caller's transaction."""
    if reservation.id is not None:
        await repository.delete_reservation(session, reservation.id)


async def release(database: Database, reservation: Reservation) -> None:
    """Give back a reservation whose calls failed (what they spent is already charged)."""
    if reservation.id is not None:
        async with database.session() as session:
            await repository.delete_reservation(session, reservation.id)
