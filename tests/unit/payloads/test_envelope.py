"""The envelope: event names, instance, apikey, sender; bad bodies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from intellizap.evolution.payloads import (
    ChatMessage,
    GroupsSeen,
    Ignored,
    PayloadError,
    parse_envelope,
)
from tests.unit.payloads.helpers import (
    GROUP,
    INSTANCE,
    RECEIVED,
    SENDER,
    events_of,
    load,
    upsert,
    webhook,
)

# -- envelope ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "normalised"),
    [
        ("messages.upsert", "messages.upsert"),
        ("MESSAGES_UPSERT", "messages.upsert"),
        ("messages-upsert", "messages.upsert"),
        ("  Messages.Upsert ", "messages.upsert"),
        ("SEND_MESSAGE", "send.message"),
        ("send-message-update", "send.message.update"),
        ("MESSAGES_EDITED", "messages.edited"),
        ("group-participants.update", "group-participants.update"),
        ("GROUP_PARTICIPANTS_UPDATE", "group-participants.update"),
        ("group-participants-update", "group-participants.update"),
        ("GROUP_UPDATE", "groups.update"),
        ("GROUPS_UPSERT", "groups.upsert"),
        ("CONNECTION_UPDATE", "connection.update"),
        ("QRCODE_UPDATED", "qrcode.updated"),
    ],
)
def test_event_name_spellings_are_normalised(spelling: str, normalised: str) -> None:
    assert parse_envelope({"event": spelling, "instance": INSTANCE}).event == normalised


def test_config_style_event_name_routes_like_the_dotted_one() -> None:
    body = load("messages.upsert.text.group.json")
    body["event"] = "MESSAGES_UPSERT"
    assert events_of(body) == events_of(load("messages.upsert.text.group.json"))
    participants = load("group-participants.update.json")
    participants["event"] = "group-participants-update"
    assert events_of(participants) == [GroupsSeen(((GROUP, None),))]


def test_envelope_strips_instance_and_device_suffix_of_sender() -> None:
    envelope = parse_envelope(
        {
            "event": "messages.upsert",
            "instance": "  acme-support ",
            "sender": "5511999990000:3@s.whatsapp.net",
        }
    )
    assert envelope.instance == "acme-support"
    assert envelope.sender == SENDER
    assert envelope.apikey is None
    assert envelope.data is None


@pytest.mark.parametrize("apikey", ["", None, 42, ["k"], {"k": "v"}])
def test_envelope_apikey_is_none_unless_a_non_empty_string(apikey: object) -> None:
    body = {"event": "messages.upsert", "instance": INSTANCE, "apikey": apikey}
    assert parse_envelope(body).apikey is None


@pytest.mark.parametrize("sender", ["", "   ", None, 5, "a\x00b@s.whatsapp.net"])
def test_envelope_sender_is_none_unless_a_usable_jid(sender: object) -> None:
    body = {"event": "messages.upsert", "instance": INSTANCE, "sender": sender}
    assert parse_envelope(body).sender is None


@pytest.mark.parametrize("body", [[1, 2], "text", None, 5, True, []])
def test_non_object_body_is_rejected(body: object) -> None:
    with pytest.raises(PayloadError, match="body must be a JSON object"):
        parse_envelope(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instance": INSTANCE}, "event must be a non-empty string.*it is missing"),
        ({"event": None, "instance": INSTANCE}, "event must be a non-empty string.*got null"),
        ({"event": 5, "instance": INSTANCE}, "event must be a non-empty string.*got a number"),
        ({"event": ["x"], "instance": INSTANCE}, "event must be .*got an array"),
        ({"event": "  ", "instance": INSTANCE}, "event must be .*blank"),
        ({"event": "x" * 101, "instance": INSTANCE}, "event must be at most 100 characters"),
        ({"event": "._-", "instance": INSTANCE}, "event must be an event name"),
        ({"event": "messages.upsert"}, "instance must be a non-empty string.*it is missing"),
        ({"event": "messages.upsert", "instance": ""}, "instance must be .*blank"),
        ({"event": "messages.upsert", "instance": {}}, "instance must be .*got an object"),
        ({"event": "messages.upsert", "instance": "i" * 256}, "instance must be at most 255"),
        ({"event": "messages.upsert", "instance": "ac\x00me"}, "instance must not contain control"),
    ],
)
def test_bad_envelope_is_rejected_naming_the_field(body: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_envelope(body)


def test_instance_at_the_length_limit_is_accepted() -> None:
    assert parse_envelope({"event": "x", "instance": "i" * 255}).instance == "i" * 255


@pytest.mark.parametrize(
    "event", ["qrcode.updated", "messages.set", "chats.upsert", "presence.update", "call"]
)
def test_unsupported_events_are_ignored_not_errors(event: str) -> None:
    assert events_of(webhook(event, {"whatever": [1, 2]})) == [
        Ignored(f"unsupported event {event}")
    ]


def test_received_at_must_be_timezone_aware_and_is_reported_in_utc() -> None:
    body = upsert({"conversation": "oi"}, messageTimestamp=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        events_of(body, datetime(2025, 10, 22, 9, 0))  # naive on purpose
    local = RECEIVED.astimezone(timezone(timedelta(hours=-3)))
    message = chat_message_at(body, local)
    assert message.sent_at == RECEIVED
    assert message.sent_at.utcoffset() == timedelta(0)


def chat_message_at(body: object, received_at: datetime) -> ChatMessage:
    [event] = events_of(body, received_at)
    assert isinstance(event, ChatMessage)
    return event
