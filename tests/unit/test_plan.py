"""The values an operator types for a tenant's plan: accepted in their usual spellings, refused
with a message that shows a good value."""

from __future__ import annotations

import uuid

import pytest

from intellizap.tenants import plan


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("9:00", "09:00"),
        ("09:00", "09:00"),
        (" 21:30 ", "21:30"),
        ("0:00", "00:00"),
        ("23:59", "23:59"),
    ],
)
def test_summary_times_are_stored_as_hh_mm(typed: str, stored: str) -> None:
    assert plan.summary_time(typed) == stored


@pytest.mark.parametrize(
    "typed", ["24:00", "25:00", "9h", "9", "09:60", "9:5", "", "noon", "09:00:00"]
)
def test_bad_summary_times_are_refused_with_an_example(typed: str) -> None:
    with pytest.raises(plan.InvalidPlanValue, match=r"HH:MM on a 24-hour clock, e\.g\. 09:00"):
        plan.summary_time(typed)


@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "America/Manaus", "Europe/Lisbon", "UTC"])
def test_iana_zones_are_accepted(zone: str) -> None:
    assert plan.timezone(zone) == zone


@pytest.mark.parametrize(
    "zone", ["Brasil/Sao Paulo", "Mars/Olympus", "", "posixrules", "../etc/passwd", "America/"]
)
def test_unknown_zones_are_refused_with_examples(zone: str) -> None:
    with pytest.raises(plan.InvalidPlanValue, match="America/Sao_Paulo"):
        plan.timezone(zone)


def test_renewal_day_is_1_to_28() -> None:
    assert plan.renewal_day(1) == 1
    assert plan.renewal_day(28) == 28
    for day in (0, 29, 31, -1):
        with pytest.raises(plan.InvalidPlanValue, match="use 1 to 28"):
            plan.renewal_day(day)


def test_auth_id_is_a_uuid() -> None:
    value = uuid.uuid4()
    assert plan.auth_id(f" {value} ") == value
    with pytest.raises(plan.InvalidPlanValue, match="Supabase Auth"):
        plan.auth_id("not-a-uuid")


@pytest.mark.parametrize("jid", ["120363401234567890@g.us", "5511999990000-1500000000@g.us"])
def test_group_jids_are_accepted(jid: str) -> None:
    assert plan.group_jid(jid) == jid


@pytest.mark.parametrize(
    "jid", ["5511999990000@s.whatsapp.net", "120363401234567890", "abc@g.us", "status@broadcast"]
)
def test_other_jids_are_refused(jid: str) -> None:
    with pytest.raises(plan.InvalidPlanValue, match=r"@g\.us"):
        plan.group_jid(jid)


@pytest.mark.parametrize("name", ["", "  ", "two words", "a/b", "x" * 101])
def test_bad_instance_names_are_refused(name: str) -> None:
    with pytest.raises(plan.InvalidPlanValue, match="instance"):
        plan.instance_name(name)


def test_negative_limits_are_refused() -> None:
    assert plan.non_negative("--max-grupos", 0) == 0
    with pytest.raises(plan.InvalidPlanValue, match="--max-grupos cannot be negative"):
        plan.non_negative("--max-grupos", -1)
