"""Reading a provider's rate-limit headers: reset durations and Retry-After in every form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from intellizap.rate_limits import parse_duration, retry_after
from tests.fakes.openai_limits import reset_text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("120ms", 0.12),
        ("17.28s", 17.28),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("2", 2.0),
        ("0.5", 0.5),
        (" 3s ", 3.0),
    ],
)
def test_reset_durations_as_openai_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "1x", "s", "1s2", "-", "1s garbage"])
def test_unreadable_durations_are_none(text: str | None) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize("seconds", [0.05, 0.2, 1.0, 1.5, 59.9, 60.0, 360.0, 3600.0])
def test_the_fake_writes_durations_the_limiter_reads(seconds: float) -> None:
    assert parse_duration(reset_text(seconds)) == pytest.approx(seconds, abs=0.5)


def test_retry_after_in_milliseconds_seconds_or_a_date() -> None:
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == pytest.approx(1.5)
    assert retry_after({"retry-after": "7"}) == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after": later}) == pytest.approx(30, abs=2)
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after": past}) == 0.0
    assert retry_after({"retry-after": "whenever"}) is None
    assert retry_after({"retry-after-ms": "soon"}) is None
    assert retry_after({}) is None
    assert retry_after(None) is None
