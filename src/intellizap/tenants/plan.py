"""A tenant's plan values as an operator types them: checked before they reach ``usuarios``.

The frontend writes these columns directly and the scheduler tolerates bad values (an unparseable
hour is never due, an unknown zone falls back to ``DEFAULT_TIMEZONE``); the CLI refuses them
instead, with a message saying what a good value looks like.
"""

from __future__ import annotations

import re
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_HOUR = re.compile(r"^\s*([01]?[0-9]|2[0-3]):([0-5][0-9])\s*$")
GROUP_SUFFIX = "@g.us"


class InvalidPlanValue(ValueError):
    """A value the operator typed cannot be stored; the message says what to type instead."""


def summary_time(value: str) -> str:
    """``"9:00"`` → ``"09:00"``: the ``"horaResumo"`` format, a 24-hour local time."""
    match = _HOUR.match(value)
    if match is None:
        raise InvalidPlanValue(
            f"{value!r} is not a time of day: use HH:MM on a 24-hour clock, e.g. 09:00 or 21:30"
        )
    return f"{int(match[1]):02d}:{match[2]}"


def timezone(value: str) -> str:
    """An IANA time zone name PostgreSQL and Python both know, e.g. ``America/Sao_Paulo``."""
    name = value.strip()
    try:
        # ZoneInfo also accepts file paths relative to the tz database ("posix/…", "Etc/../…");
        # only the canonical names are good values for the frontend and PostgreSQL.
        ZoneInfo(name)
        known = name in available_timezones()
    except (ZoneInfoNotFoundError, ValueError):
        known = False
    if not known:
        raise InvalidPlanValue(
            f"{value!r} is not a known IANA time zone: use a name such as America/Sao_Paulo, "
            "America/Manaus or Europe/Lisbon"
        )
    return name


def renewal_day(value: int) -> int:
    """``"dia-renovacao-tokens"``: 1–28, so that every month has that day."""
    if not 1 <= value <= 28:
        raise InvalidPlanValue(
            f"{value} is not a renewal day: use 1 to 28 (every month has those days)"
        )
    return value


def non_negative(name: str, value: int) -> int:
    if value < 0:
        raise InvalidPlanValue(f"{name} cannot be negative (got {value})")
    return value


def auth_id(value: str) -> uuid.UUID:
    """The Supabase Auth user id (``auth.users.id``), a UUID."""
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidPlanValue(
            f"{value!r} is not a UUID: use the user's id from Supabase Auth "
            "(Authentication > Users), e.g. 6f1c2b9e-0d4a-4c1e-9a57-3b2d8e6f0a11"
        ) from None


def instance_name(value: str) -> str:
    """An Evolution instance name: what Evolution puts in every webhook's ``instance``."""
    name = value.strip()
    if not name or len(name) > 100 or any(char.isspace() or char == "/" for char in name):
        raise InvalidPlanValue(
            f"{value!r} is not an instance name: use the name the instance has on the Evolution "
            "server (no spaces or slashes, at most 100 characters)"
        )
    return name


def group_jid(value: str) -> str:
    """A WhatsApp group JID, ``<digits>[-<digits>]@g.us``."""
    jid = value.strip()
    if not re.fullmatch(r"[0-9]+(?:-[0-9]+)?@g\.us", jid):
        raise InvalidPlanValue(
            f"{value!r} is not a group JID: groups look like 120363401234567890@g.us "
            "(`intellizap grupos list INSTANCE` shows them)"
        )
    return jid


def owner_number(value: str) -> str:
    """The owner's own WhatsApp number as ``numero_dono`` holds it: country and area code,
    digits only (``+55 (11) 98888-7777`` → ``5511988887777``)."""
    digits = re.sub(r"[\s+()\-.]", "", value)
    if not re.fullmatch(r"[0-9]{8,15}", digits):
        raise InvalidPlanValue(
            f"{value!r} is not a phone number: use the country and area code and the number, "
            "e.g. 5511988887777"
        )
    return digits


_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("seg", "segunda", "mon"),
            ("ter", "terca", "terça", "tue"),
            ("qua", "quarta", "wed"),
            ("qui", "quinta", "thu"),
            ("sex", "sexta", "fri"),
            ("sab", "sáb", "sabado", "sábado", "sat"),
            ("dom", "domingo", "sun"),
        ),
        start=1,
    )
    for name in names
}


def weekday(value: str) -> int:
    """An ISO weekday (1 = Monday … 7 = Sunday), from ``1``–``7`` or a day's name (``sex``)."""
    name = value.strip().lower()
    if name.isdigit() and 1 <= int(name) <= 7:
        return int(name)
    if name in _WEEKDAYS:
        return _WEEKDAYS[name]
    raise InvalidPlanValue(
        f"{value!r} is not a day of the week: use seg, ter, qua, qui, sex, sab, dom (or 1-7, "
        "1 = Monday)"
    )
