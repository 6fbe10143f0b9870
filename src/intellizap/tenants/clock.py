"""A tenant's local time: "today" is always the tenant's local day, computed here only."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@cache
def tenant_zone(name: str | None, default: str) -> ZoneInfo:
    """The tenant's IANA zone (``usuarios.fuso_horario``), the default when unset or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(default)


def local_day(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()
