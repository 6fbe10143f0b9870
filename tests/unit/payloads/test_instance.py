"""Groups and connection events."""

from __future__ import annotations

from typing import Any

import pytest

from intellizap.evolution.payloads import (
    ConnectionChanged,
    GroupsSeen,
    PayloadError,
)
from tests.unit.payloads.helpers import (
    CONTACT,
    GROUP,
    INSTANCE,
    MEMBER,
    events_of,
    webhook,
)

# -- groups and connection ---------------------------------------------------------------------------


def test_groups_skip_malformed_items_and_non_groups_and_blank_subjects() -> None:
    data = [
        None,
        5,
        {"subject": "sem id"},
        {"id": 5, "subject": "id numérico"},
        {"id": CONTACT, "subject": "contato"},
        {"id": "x@g.us", "subject": "inválido"},
        {"id": "120363000000000001@g.us", "subject": "   "},
        {"id": " 120363000000000002@G.US ", "subject": " Vendas\x00 "},
        {"id": "120363000000000001@g.us", "subject": "Depois"},
        {"id": "120363000000000002@g.us", "subject": None},
        {"id": "5511999990000-1600000000@g.us", "subject": "grupo antigo"},
    ]
    assert events_of(webhook("groups.upsert", data)) == [
        GroupsSeen(
            (
                ("120363000000000001@g.us", "Depois"),
                ("120363000000000002@g.us", "Vendas"),
                ("5511999990000-1600000000@g.us", "grupo antigo"),
            ),
            invalid=1,  # x@g.us
        )
    ]


@pytest.mark.parametrize("data", [None, "x", 5, [], {}])
def test_groups_events_without_groups_are_empty_not_errors(data: object) -> None:
    for event in ("groups.upsert", "groups.update", "group-participants.update"):
        assert events_of(webhook(event, data)) == [GroupsSeen(())]


def test_group_participants_update_in_the_older_string_form() -> None:
    data = {"id": GROUP, "author": MEMBER, "participants": [CONTACT], "action": "remove"}
    assert events_of(webhook("group-participants.update", data)) == [GroupsSeen(((GROUP, None),))]


@pytest.mark.parametrize(
    ("data", "state"),
    [
        ({"instance": INSTANCE, "state": "connecting", "statusReason": 200}, "connecting"),
        ({"instance": INSTANCE, "state": "refused", "statusReason": 428}, "refused"),
        ({"state": " OPEN "}, "open"),
    ],
)
def test_connection_state(data: dict[str, Any], state: str) -> None:
    assert events_of(webhook("connection.update", data)) == [ConnectionChanged(state)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, r"^data must be an object \(got null\)$"),
        ({}, r"^data\.state must be a non-empty string \(it is missing\)$"),
        ({"state": 1}, r"^data\.state must be a non-empty string \(got a number\)$"),
        ({"state": "x" * 65}, r"^data\.state must be at most 64 characters"),
    ],
)
def test_malformed_connection_update_is_rejected(data: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        events_of(webhook("connection.update", data))
