"""Evolution webhook bodies → typed events, for every version in the reference (v1 1.8.x, v2 2.0 –
2.3.6): the captured fixtures, variants built from the reference, bad input, and fuzzing."""

from __future__ import annotations

import json
import re
from copy import deepcopy
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intellizap.evolution.payloads import (
    MAX_TEXT_LENGTH,
    ChatMessage,
    ConnectionChanged,
    Envelope,
    Event,
    GroupsSeen,
    Ignored,
    MessageDeleted,
    MessageEdited,
    PayloadError,
    Reaction,
    parse_envelope,
    parse_events,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "evolution"

RECEIVED = datetime(2025, 10, 22, 9, 0, tzinfo=UTC)
SENT = datetime(2025, 10, 21, 14, 3, 12, tzinfo=UTC)  # messageTimestamp 1761055392
EDITED = datetime(2025, 10, 21, 14, 3, 32, 345_000, tzinfo=UTC)  # timestampMs 1761055412345
SENT_SECONDS = 1_761_055_392
EDIT_MS = 1_761_055_412_345

INSTANCE = "acme-support"
APIKEY = "B6D9F1A2-3C4E-4F5A-8B7C-9D0E1F2A3B4C"
SENDER = "5511999990000@s.whatsapp.net"
GROUP = "120363401234567890@g.us"
CONTACT = "5511988880001@s.whatsapp.net"
MEMBER = "5521977770002@s.whatsapp.net"
MEMBER_LID = "209876543210987@lid"
CONTACT_LID = "184467440737095@lid"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def events_of(body: object, received_at: datetime = RECEIVED) -> list[Event]:
    return parse_events(parse_envelope(body), received_at)


def event_of(body: object) -> Event:
    [event] = events_of(body)
    return event


def chat_message(body: object) -> ChatMessage:
    event = event_of(body)
    assert isinstance(event, ChatMessage), event
    return event


def webhook(event: str, data: object, *, sender: str | None = SENDER) -> dict[str, Any]:
    body: dict[str, Any] = {"event": event, "instance": INSTANCE, "data": data, "apikey": APIKEY}
    if sender is not None:
        body["sender"] = sender
    return body


def group_key(**changes: Any) -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJid": GROUP, "fromMe": False, "id": "MSG1", "participant": MEMBER}
    key.update(changes)
    return {name: value for name, value in key.items() if value is not None}


def upsert(
    message: object,
    *,
    key: dict[str, Any] | None = None,
    event: str = "messages.upsert",
    sender: str | None = SENDER,
    **fields: Any,
) -> dict[str, Any]:
    """A v2 ``messages.upsert`` body (group text by default) with the given message content."""
    data: dict[str, Any] = {
        "key": key if key is not None else group_key(),
        "pushName": "Bruno Lima",
        "status": "DELIVERY_ACK",
        "message": message,
        "messageTimestamp": SENT_SECONDS,
    }
    data.update(fields)
    return webhook(event, data, sender=sender)


# -- every webhook fixture ------------------------------------------------------------------------


def _message(body: dict[str, Any], **fields: Any) -> ChatMessage:
    """The ChatMessage a fixture should give: common defaults, overridden per fixture."""
    data = body["data"]
    values: dict[str, Any] = {
        "chat_jid": data["key"]["remoteJid"],
        "message_id": data["key"]["id"],
        "from_me": False,
        "author_name": data["pushName"],
        "author_number": None,
        "sent_at": SENT,
        "kind": "texto",
        "text": None,
        "is_voice_note": False,
        "media_base64": None,
        "media_key": None,
        "quoted_message_id": None,
        "seconds": None,
    }
    values.update(fields)
    return ChatMessage(**values)


def _media_key(body: dict[str, Any]) -> dict[str, object]:
    message = {k: v for k, v in body["data"]["message"].items() if k != "base64"}
    return {"key": body["data"]["key"], "message": message}


EXPECTED: dict[str, Any] = {
    "messages.upsert.private.json": lambda b: [
        _message(b, author_number="5511988880001", text="Oi, qual o status do meu pedido #1234?")
    ],
    "messages.upsert.text.group.json": lambda b: [
        _message(b, author_number="5521977770002", text="Bom dia, equipe!")
    ],
    "messages.upsert.extended.reply.json": lambda b: [
        _message(
            b,
            author_number="5511988880001",
            text="@5521977770002 pode ver isso hoje?",
            quoted_message_id="3A9F2C1B7D6E5A4B3C2D",
        )
    ],
    "messages.upsert.image.caption.json": lambda b: [
        _message(
            b,
            author_number="5511988880001",
            kind="imagem",
            text="Foto do produto com defeito",
            media_key=_media_key(b),
        )
    ],
    "messages.upsert.audio.ptt.json": lambda b: [
        _message(
            b,
            author_number="5511988880001",
            kind="audio",
            is_voice_note=True,
            media_key=_media_key(b),
            seconds=7,
        )
    ],
    "messages.upsert.audio.base64.json": lambda b: [
        _message(
            b,
            author_number="5511988880001",
            kind="audio",
            is_voice_note=True,
            media_base64="T2dnUwACAAAAAAAAAAAAAAAAAAAAAAAAAAABE09wdXNIZWFk",
            media_key=_media_key(b),
            seconds=7,
        )
    ],
    "messages.upsert.reaction.json": lambda b: [
        Reaction(CONTACT, "F1E2D3C4B5A69788796A5B4C3D2E1F00", "3EB0A1B2C3D4E5F6A7B8C9", "👍")
    ],
    "messages.upsert.fromme.json": lambda b: [
        _message(
            b, from_me=True, author_number="5511999990000", text="Já verifiquei, chega amanhã."
        )
    ],
    "messages.upsert.status-broadcast.json": lambda b: [
        _message(
            b,
            author_number="5521977770002",
            kind="imagem",
            text="Promoção de hoje!",
            media_key=_media_key(b),
        )
    ],
    "send.message.json": lambda b: [
        _message(
            b,
            from_me=True,
            author_number="5511999990000",
            text="Olá! Seu pedido #1234 foi enviado.",
        )
    ],
    "messages.edited.edit.json": lambda b: [
        MessageEdited(
            SENDER,
            "A5561E44C2A63682E4295B52F484C14E",
            "Oi, qual o status do meu pedido #1235?",
            EDITED,
        )
    ],
    "messages.edited.revoke.json": lambda b: [
        MessageDeleted(SENDER, "A5561E44C2A63682E4295B52F484C14E", RECEIVED)
    ],
    "messages.delete.json": lambda b: [
        MessageDeleted(CONTACT, "A5561E44C2A63682E4295B52F484C14E", RECEIVED)
    ],
    "messages.update.json": lambda b: [Ignored("receipt")],
    "groups.upsert.json": lambda b: [GroupsSeen(((GROUP, "Equipe Vendas"),))],
    "groups.update.json": lambda b: [GroupsSeen(((GROUP, "Equipe Vendas 2026"),))],
    "group-participants.update.json": lambda b: [GroupsSeen(((GROUP, None),))],
    "connection.update.json": lambda b: [ConnectionChanged("open")],
    "connection.update.close.json": lambda b: [ConnectionChanged("close")],
}
WEBHOOK_FIXTURES = sorted(
    path.name for path in FIXTURES.glob("*.json") if not path.name.startswith("rest.")
)


def test_every_webhook_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == WEBHOOK_FIXTURES


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_fixture_parses_to_the_expected_events(name: str) -> None:
    body = load(name)
    assert events_of(body) == EXPECTED[name](body)


@pytest.mark.parametrize("name", WEBHOOK_FIXTURES)
def test_fixture_envelope_names_event_instance_key_and_sender(name: str) -> None:
    body = load(name)
    envelope = parse_envelope(body)
    assert envelope == Envelope(
        event=body["event"], instance=INSTANCE, apikey=APIKEY, sender=SENDER, data=body["data"]
    )
    assert name.startswith(envelope.event)


def test_media_key_is_what_get_base64_accepts_without_the_inline_base64() -> None:
    body = load("messages.upsert.audio.base64.json")
    message = chat_message(body)
    assert message.media_key is not None
    assert set(message.media_key) == {"key", "message"}
    assert message.media_key["key"] == body["data"]["key"]
    assert message.media_key["message"] == {"audioMessage": body["data"]["message"]["audioMessage"]}
    assert "base64" in body["data"]["message"]  # the input is left alone


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


# -- message keys and bad message data ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("nope", r"^data must be an object \(got a string\)$"),
        (None, r"^data must be an object \(got null\)$"),
        ({"message": {"conversation": "oi"}}, r"^data\.key must be an object \(it is missing\)$"),
        ({"key": "k"}, r"^data\.key must be an object \(got a string\)$"),
        (
            {"key": {"remoteJid": GROUP, "id": 7}},
            r"^data\.key\.id must be a non-empty string \(got a number\)$",
        ),
        (
            {"key": {"remoteJid": GROUP, "id": ""}},
            r"^data\.key\.id must be a non-empty string \(got a blank string\)$",
        ),
        (
            {"key": {"remoteJid": GROUP}},
            r"^data\.key\.id must be a non-empty string \(it is missing\)$",
        ),
        (
            {"key": {"id": "M1"}},
            r"^data\.key\.remoteJid must be a non-empty string \(it is missing\)$",
        ),
        ({"key": {"remoteJid": "  ", "id": "M1"}}, r"^data\.key\.remoteJid must be a non-empty"),
        ({"key": {"remoteJid": "@g.us", "id": "M1"}}, r"^data\.key\.remoteJid must be a JID"),
        (
            {"key": {"remoteJid": GROUP, "id": "M1", "fromMe": "yes"}},
            r"^data\.key\.fromMe must be true or false \(got a string\)$",
        ),
        (
            {"key": {"remoteJid": GROUP, "id": "M\x001"}},
            r"^data\.key\.id must not contain control characters$",
        ),
    ],
)
def test_malformed_message_data_is_rejected_naming_the_field(data: object, message: str) -> None:
    for event in ("messages.upsert", "send.message"):
        with pytest.raises(PayloadError, match=message):
            events_of(webhook(event, data))


def test_huge_key_id_is_rejected_without_echoing_it() -> None:
    huge = "X" * 10_000
    with pytest.raises(PayloadError) as raised:
        events_of(upsert({"conversation": "oi"}, key=group_key(id=huge)))
    message = str(raised.value)
    assert message == "data.key.id must be at most 128 characters (got 10000)"
    assert "XXXXX" not in message


def test_key_id_at_the_limit_is_accepted_and_stripped() -> None:
    assert chat_message(upsert({"conversation": "oi"}, key=group_key(id="A" * 128))).message_id == (
        "A" * 128
    )
    assert (
        chat_message(upsert({"conversation": "oi"}, key=group_key(id=" ABC "))).message_id == "ABC"
    )


def test_bad_item_in_a_data_array_is_named_by_index() -> None:
    good = upsert({"conversation": "oi"})["data"]
    with pytest.raises(PayloadError, match=r"^data\[1\]\.key\.id must be a non-empty string"):
        events_of(webhook("messages.upsert", [good, {"key": {"remoteJid": GROUP}}]))


def test_data_array_gives_one_event_per_item() -> None:
    first = upsert({"conversation": "um"})["data"]
    second = upsert({"conversation": "dois"}, key=group_key(id="MSG2"))["data"]
    events = events_of(webhook("messages.upsert", [first, second]))
    assert [(e.message_id, e.text) for e in events if isinstance(e, ChatMessage)] == [
        ("MSG1", "um"),
        ("MSG2", "dois"),
    ]


def test_empty_data_array_is_ignored() -> None:
    assert events_of(webhook("messages.upsert", [])) == [Ignored("empty data")]


def test_from_me_defaults_to_false_and_accepts_null() -> None:
    assert chat_message(upsert({"conversation": "oi"}, key=group_key(fromMe=None))).from_me is False
    key = {"remoteJid": GROUP, "id": "M1", "fromMe": None, "participant": MEMBER}
    assert chat_message(upsert({"conversation": "oi"}, key=key)).from_me is False


# -- timestamps --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        SENT_SECONDS,
        float(SENT_SECONDS),
        str(SENT_SECONDS),
        f" {SENT_SECONDS} ",
        {"low": SENT_SECONDS, "high": 0, "unsigned": False},
        {"low": SENT_SECONDS, "high": 0},
        SENT_SECONDS * 1000,
        str(SENT_SECONDS * 1000),
        {"low": 118_800_640, "high": 410, "unsigned": False},  # 1761055392000 ms
    ],
    ids=repr,
)
def test_message_timestamp_in_every_encoding(timestamp: object) -> None:
    assert chat_message(upsert({"conversation": "oi"}, messageTimestamp=timestamp)).sent_at == SENT


def test_millisecond_timestamp_keeps_its_milliseconds() -> None:
    message = chat_message(
        upsert({"conversation": "oi"}, messageTimestamp=SENT_SECONDS * 1000 + 345)
    )
    assert message.sent_at == SENT + timedelta(milliseconds=345)


def test_long_with_negative_low_word_is_read_as_unsigned_32_bits() -> None:
    # protobufjs stores the low word as a signed int32: 2_200_000_000 → low = -2_094_967_296.
    timestamp = {"low": 2_200_000_000 - 2**32, "high": 0, "unsigned": False}
    sent_at = chat_message(upsert({"conversation": "oi"}, messageTimestamp=timestamp)).sent_at
    assert sent_at == datetime.fromtimestamp(2_200_000_000, UTC)


@pytest.mark.parametrize(
    "timestamp",
    [
        None,
        0,
        -1,
        315_532_800,  # 1980: before WhatsApp
        5_000_000_000,  # year 2128
        99_999_999_999_999_999_999,
        "",
        "abc",
        "12e3",
        True,
        [],
        {"low": "1", "high": 0},
        {"low": SENT_SECONDS},
        float("nan"),
        float("inf"),
    ],
    ids=repr,
)
def test_missing_or_absurd_timestamp_falls_back_to_received_at(timestamp: object) -> None:
    message = chat_message(upsert({"conversation": "oi"}, messageTimestamp=timestamp))
    assert message.sent_at == RECEIVED


def test_absent_timestamp_falls_back_to_received_at() -> None:
    body = upsert({"conversation": "oi"})
    del body["data"]["messageTimestamp"]
    assert chat_message(body).sent_at == RECEIVED


@pytest.mark.parametrize(
    "timestamp_ms",
    [
        str(EDIT_MS),
        EDIT_MS,
        {"low": EDIT_MS % 2**32, "high": EDIT_MS // 2**32, "unsigned": False},
    ],
    ids=repr,
)
def test_edit_timestamp_ms_in_every_encoding(timestamp_ms: object) -> None:
    body = load("messages.edited.edit.json")
    body["data"]["timestampMs"] = timestamp_ms
    event = event_of(body)
    assert isinstance(event, MessageEdited)
    assert event.edited_at == EDITED


# -- v1 (1.8.x) shapes --------------------------------------------------------------------------------


def v1_body(message: dict[str, Any], message_type: str, **key: Any) -> dict[str, Any]:
    """v1: no status/instanceId, ``owner``, string timestamps, no apikey unless exposed."""
    return {
        "event": "messages.upsert",
        "instance": INSTANCE,
        "data": {
            "key": {"remoteJid": GROUP, "fromMe": False, "id": "3EB0V1", "participant": MEMBER}
            | key,
            "pushName": "Bruno Lima",
            "message": message,
            "contextInfo": None,
            "messageType": message_type,
            "messageTimestamp": str(SENT_SECONDS),
            "owner": INSTANCE,
            "source": "android",
        },
        "destination": "https://backend.example.com/webhooks/evolution",
        "date_time": "2025-10-21T11:03:12.345Z",
        "sender": SENDER,
        "server_url": "https://evo.example.com",
    }


def test_v1_extended_text_message_left_in_place_gives_text_and_quote() -> None:
    body = v1_body(
        {
            "extendedTextMessage": {
                "text": "Concordo com a proposta",
                "contextInfo": {
                    "stanzaId": "3A9F2C1B7D6E5A4B3C2D",
                    "participant": CONTACT,
                    "quotedMessage": {"conversation": "Proposta enviada"},
                },
                "previewType": "NONE",
            },
            "messageContextInfo": {"deviceListMetadata": {"senderTimestamp": "1760990000"}},
        },
        "extendedTextMessage",
    )
    assert parse_envelope(body).apikey is None
    assert chat_message(body) == ChatMessage(
        chat_jid=GROUP,
        message_id="3EB0V1",
        from_me=False,
        author_name="Bruno Lima",
        author_number="5521977770002",
        sent_at=SENT,
        kind="texto",
        text="Concordo com a proposta",
        is_voice_note=False,
        media_base64=None,
        media_key=None,
        quoted_message_id="3A9F2C1B7D6E5A4B3C2D",
        seconds=None,
    )


def test_v1_document_with_caption_wrapper_left_in_place() -> None:
    message = {
        "documentWithCaptionMessage": {
            "message": {
                "documentMessage": {
                    "url": "https://mmg.whatsapp.net/d/f/fake.enc",
                    "mimetype": "application/pdf",
                    "title": "contrato.pdf",
                    "fileSha256": "3Q2+7w==",
                    "fileLength": "670662",
                    "pageCount": 3,
                    "mediaKey": "+A3XkQ==",
                    "fileName": "contrato.pdf",
                    "caption": "Segue o contrato",
                }
            }
        }
    }
    body = v1_body(message, "documentWithCaptionMessage")
    result = chat_message(body)
    assert (result.kind, result.text) == ("documento", "Segue o contrato")
    assert result.media_key == {"key": body["data"]["key"], "message": message}


def test_v1_voice_note_with_base64_string_bytes_and_inline_base64() -> None:
    audio = {
        "url": "https://mmg.whatsapp.net/v/t62.7117-24/fake.enc",
        "mimetype": "audio/ogg; codecs=opus",
        "fileSha256": "7WQNCWEV6oHgNSvcK7azelmGFYss0X8tVV+rxT+exIE=",
        "fileLength": "670662",
        "seconds": 12,
        "ptt": True,
        "mediaKey": "+A3XqcArGL1kJTiBt0TQdDXCkSYMayF67294Ea9euKjU=",
        "mediaKeyTimestamp": "1761055389",
    }
    body = v1_body({"audioMessage": audio, "base64": "T2dnUw=="}, "audioMessage")
    result = chat_message(body)
    assert (result.kind, result.is_voice_note, result.seconds) == ("audio", True, 12)
    assert result.media_base64 == "T2dnUw=="
    assert result.media_key == {"key": body["data"]["key"], "message": {"audioMessage": audio}}


# -- authors, LIDs and device suffixes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "author"),
    [
        (group_key(participant=MEMBER_LID), MEMBER_LID),  # LID only: the LID is the identity
        (group_key(participant="209876543210987:12@lid"), MEMBER_LID),
        (group_key(participant=MEMBER_LID, participantAlt=MEMBER), "5521977770002"),  # 2.3.3+
        (group_key(participant=MEMBER, participantAlt=MEMBER_LID), "5521977770002"),
        (group_key(participant=MEMBER_LID, participantPn=MEMBER), "5521977770002"),  # 2.3.1
        (group_key(participant=MEMBER_LID, senderPn=MEMBER), "5521977770002"),  # 2.3.0
        (group_key(participant="5521977770002:75@s.whatsapp.net"), "5521977770002"),
        (group_key(participant="5521977770002@c.us"), "5521977770002"),
        (group_key(participant="5521977770002"), "5521977770002"),  # bare digits
        (group_key(participant=None), None),
        (group_key(participant=42), None),
        (group_key(participant="not-a-jid@somewhere"), None),
    ],
)
def test_group_author_is_first_phone_number_else_lid(key: dict[str, Any], author: str) -> None:
    assert chat_message(upsert({"conversation": "oi"}, key=key)).author_number == author


@pytest.mark.parametrize(
    ("key", "chat", "author"),
    [
        ({"remoteJid": CONTACT_LID}, CONTACT_LID, CONTACT_LID),
        ({"remoteJid": CONTACT_LID, "remoteJidAlt": CONTACT}, CONTACT_LID, "5511988880001"),
        ({"remoteJid": CONTACT, "remoteJidAlt": CONTACT_LID}, CONTACT, "5511988880001"),
        ({"remoteJid": CONTACT_LID, "senderPn": CONTACT}, CONTACT_LID, "5511988880001"),  # 2.3.0
        ({"remoteJid": CONTACT, "previousRemoteJid": CONTACT_LID}, CONTACT, "5511988880001"),
        ({"remoteJid": "5511988880001:12@S.WhatsApp.Net "}, CONTACT, "5511988880001"),
        ({"remoteJid": "184467440737095:4@lid"}, CONTACT_LID, CONTACT_LID),
    ],
)
def test_private_chat_jid_and_author(key: dict[str, Any], chat: str, author: str) -> None:
    message = chat_message(upsert({"conversation": "oi"}, key={"fromMe": False, "id": "P1"} | key))
    assert (message.chat_jid, message.author_number) == (chat, author)


def test_group_chat_jid_is_normalised() -> None:
    key = group_key(remoteJid=" 120363401234567890@G.US ")
    assert chat_message(upsert({"conversation": "oi"}, key=key)).chat_jid == GROUP


def test_own_group_message_without_participant_is_authored_by_the_instance() -> None:
    key = group_key(fromMe=True, participant=None)
    assert chat_message(upsert({"conversation": "oi"}, key=key)).author_number == "5511999990000"
    body = upsert({"conversation": "oi"}, key=key, sender="5511999990000:7@s.whatsapp.net")
    assert chat_message(body).author_number == "5511999990000"
    assert chat_message(upsert({"conversation": "oi"}, key=key, sender=None)).author_number is None


def test_own_group_message_prefers_a_phone_over_our_lid() -> None:
    key = group_key(fromMe=True, participant="100000000000001@lid")
    assert chat_message(upsert({"conversation": "oi"}, key=key)).author_number == "5511999990000"
    body = upsert({"conversation": "oi"}, key=key, sender=None)
    assert chat_message(body).author_number == "100000000000001@lid"


def test_own_private_message_is_authored_by_the_instance_not_the_contact() -> None:
    key = {"remoteJid": CONTACT, "fromMe": True, "id": "P1"}
    assert chat_message(upsert({"conversation": "oi"}, key=key)).author_number == "5511999990000"
    body = upsert({"conversation": "oi"}, key=key, event="send.message", sender=None)
    assert chat_message(body).author_number is None


def test_send_message_in_a_group_is_ours() -> None:
    body = upsert(
        {"conversation": "Resumo do dia"},
        key={"remoteJid": GROUP, "fromMe": True, "id": "3EB0SEND"},
        event="send.message",
        pushName="Você",
        status="PENDING",
    )
    message = chat_message(body)
    assert (message.from_me, message.author_number, message.author_name) == (
        True,
        "5511999990000",
        "Você",
    )


@pytest.mark.parametrize("push_name", [None, 42, "", "   ", ["Ana"]])
def test_push_name_that_is_not_a_usable_string_is_none(push_name: object) -> None:
    assert chat_message(upsert({"conversation": "oi"}, pushName=push_name)).author_name is None


def test_push_name_is_stripped_and_cleaned() -> None:
    assert chat_message(upsert({"conversation": "oi"}, pushName=" Ana\x00 ")).author_name == "Ana"


# -- content types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind", "text"),
    [
        ({"conversation": "oi"}, "texto", "oi"),
        ({"conversation": ""}, "texto", None),
        ({"conversation": {"text": "x"}}, "texto", None),
        (
            {"extendedTextMessage": {"text": "com link https://x.y"}},
            "texto",
            "com link https://x.y",
        ),
        ({"extendedTextMessage": {"text": 5}}, "texto", None),
        ({"imageMessage": {"caption": "foto"}}, "imagem", "foto"),
        ({"imageMessage": {"caption": 5}}, "imagem", None),
        ({"imageMessage": {}}, "imagem", None),
        ({"videoMessage": {"caption": "vídeo", "seconds": 31}}, "video", "vídeo"),
        ({"ptvMessage": {"seconds": 5}}, "video", None),
        ({"documentMessage": {"fileName": "a.pdf", "caption": "nota"}}, "documento", "nota"),
        ({"stickerMessage": {"mimetype": "image/webp", "isAnimated": False}}, "figurinha", None),
        (
            {
                "pollCreationMessageV3": {
                    "name": "Almoço?",
                    "options": [{"optionName": "Sim"}, {"optionName": "Não"}, {"x": 1}, "?"],
                    "selectableOptionsCount": 1,
                }
            },
            "enquete",
            "Almoço?\n• Sim\n• Não",
        ),
        ({"pollCreationMessage": {"name": "Pizza?"}}, "enquete", "Pizza?"),
        ({"pollCreationMessageV2": {"options": [{"optionName": "A"}]}}, "enquete", "• A"),
        ({"pollCreationMessageV4": {"name": 5, "options": 5}}, "enquete", None),
        (
            {
                "locationMessage": {
                    "degreesLatitude": -23.5,
                    "name": "Padaria",
                    "address": "Rua X, 1",
                }
            },
            "localizacao",
            "Padaria — Rua X, 1",
        ),
        (
            {"locationMessage": {"degreesLatitude": -23.5, "degreesLongitude": -46.6}},
            "localizacao",
            None,
        ),
        ({"liveLocationMessage": {"caption": "Estou aqui"}}, "localizacao", "Estou aqui"),
        ({"contactMessage": {"displayName": "Maria", "vcard": "BEGIN:VCARD"}}, "contato", "Maria"),
        (
            {"contactsArrayMessage": {"contacts": [{"displayName": "A"}, {"displayName": "B"}, 3]}},
            "contato",
            "A, B",
        ),
        (
            {"contactsArrayMessage": {"displayName": "2 contatos", "contacts": []}},
            "contato",
            "2 contatos",
        ),
        ({"eventMessage": {"name": "Reunião", "startTime": "1761055392"}}, "evento", "Reunião"),
        ({"interactiveMessage": {"body": {"text": "Escolha"}}}, "interactiveMessage", None),
        (
            {"buttonsResponseMessage": {"selectedDisplayText": "Sim"}},
            "buttonsResponseMessage",
            None,
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_content_type_gives_kind_and_text(message: dict[str, Any], kind: str, text: str) -> None:
    result = chat_message(upsert(message))
    assert (result.kind, result.text) == (kind, text)


@pytest.mark.parametrize(
    ("content_type", "is_media"),
    [
        ("imageMessage", True),
        ("videoMessage", True),
        ("ptvMessage", True),
        ("audioMessage", True),
        ("documentMessage", True),
        ("stickerMessage", True),
        ("conversation", False),
        ("extendedTextMessage", False),
        ("locationMessage", False),
        ("interactiveMessage", False),
    ],
)
def test_media_key_only_for_media_types(content_type: str, is_media: bool) -> None:
    body = upsert({content_type: {"url": "https://x"} if content_type != "conversation" else "oi"})
    media_key = chat_message(body).media_key
    assert (media_key is not None) == is_media
    if media_key is not None:
        assert media_key == {"key": body["data"]["key"], "message": body["data"]["message"]}


@pytest.mark.parametrize(
    ("audio", "voice", "seconds"),
    [
        ({"ptt": True, "seconds": 7}, True, 7),
        ({"ptt": False, "seconds": 7}, False, 7),
        ({"ptt": "true", "seconds": "7"}, False, 7),
        ({"seconds": {"low": 9, "high": 0}}, False, 9),
        ({"seconds": -3}, False, None),
        ({"seconds": "x"}, False, None),
        ({}, False, None),
    ],
)
def test_voice_note_flag_and_duration(
    audio: dict[str, Any], voice: bool, seconds: int | None
) -> None:
    result = chat_message(upsert({"audioMessage": audio}))
    assert (result.is_voice_note, result.seconds) == (voice, seconds)


def test_duration_only_for_audio_and_video() -> None:
    assert chat_message(upsert({"imageMessage": {"seconds": 5}})).seconds is None
    assert chat_message(upsert({"videoMessage": {"seconds": 5.0}})).seconds == 5


@pytest.mark.parametrize("base64", [None, "", 5, {"data": "x"}])
def test_media_base64_only_when_a_non_empty_string(base64: object) -> None:
    message = {"imageMessage": {"caption": "x"}, "base64": base64}
    assert chat_message(upsert(message)).media_base64 is None


def test_non_content_keys_do_not_decide_the_type() -> None:
    message = {
        "messageContextInfo": {"messageSecret": "abc="},
        "senderKeyDistributionMessage": {"groupId": GROUP},
        "base64": "T2dnUw==",
        "mediaUrl": "https://s3/x.ogg",
        "speechToText": "[audio] olá",
        "audioMessage": {"ptt": True},
    }
    assert chat_message(upsert(message)).kind == "audio"


@pytest.mark.parametrize(
    "message",
    [
        None,
        "text",
        {},
        {"messageContextInfo": {"deviceListMetadata": {}}},
        {"senderKeyDistributionMessage": {"groupId": GROUP}},
        {"base64": "T2dnUw=="},
        {"viewOnceMessageV2": {}},  # Baileys 7 view-once placeholder
        {"ephemeralMessage": {"message": "x"}},
        {"conversation": None},
    ],
    ids=repr,
)
def test_message_without_content_is_ignored(message: object) -> None:
    assert event_of(upsert(message)) == Ignored("no content")


def test_missing_message_is_ignored() -> None:
    body = upsert({"conversation": "oi"})
    del body["data"]["message"]
    assert event_of(body) == Ignored("no content")


def test_poll_votes_are_not_chat_lines() -> None:
    assert event_of(upsert({"pollUpdateMessage": {"vote": {}}})) == Ignored("poll vote")


def test_quoted_id_from_v2_context_v1_context_or_media_context() -> None:
    v2 = upsert({"conversation": "sim"}, contextInfo={"stanzaId": "Q-V2"})
    assert chat_message(v2).quoted_message_id == "Q-V2"
    media = upsert({"imageMessage": {"caption": "x", "contextInfo": {"stanzaId": "Q-IMG"}}})
    assert chat_message(media).quoted_message_id == "Q-IMG"
    null_context = upsert(
        {"imageMessage": {"contextInfo": {"stanzaId": "Q-IMG"}}}, contextInfo=None
    )
    assert chat_message(null_context).quoted_message_id == "Q-IMG"
    for bad in (5, "", "Q" * 129, None):
        body = upsert({"conversation": "sim"}, contextInfo={"stanzaId": bad})
        assert chat_message(body).quoted_message_id is None


def test_text_loses_nul_characters_and_lone_surrogates() -> None:
    assert chat_message(upsert({"conversation": "a\x00b\x00c"})).text == "abc"
    assert chat_message(upsert({"conversation": "x\ud800y"})).text == "x\ufffdy"


def test_text_is_capped() -> None:
    text = chat_message(upsert({"conversation": "é" * (MAX_TEXT_LENGTH + 10)})).text
    assert text == "é" * MAX_TEXT_LENGTH
    assert (
        chat_message(upsert({"conversation": "x" * MAX_TEXT_LENGTH})).text == "x" * MAX_TEXT_LENGTH
    )


def test_status_broadcast_is_a_chat_message_of_its_own_chat() -> None:
    message = chat_message(load("messages.upsert.status-broadcast.json"))
    assert message.chat_jid == "status@broadcast"
    assert message.author_number == "5521977770002"  # the poster, not remoteJidAlt


# -- wrappers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "kind", "text"),
    [
        (
            {"ephemeralMessage": {"message": {"extendedTextMessage": {"text": "some em 7 dias"}}}},
            "texto",
            "some em 7 dias",
        ),
        ({"viewOnceMessage": {"message": {"imageMessage": {"caption": "1x"}}}}, "imagem", "1x"),
        ({"viewOnceMessageV2": {"message": {"videoMessage": {"caption": "v"}}}}, "video", "v"),
        (
            {"viewOnceMessageV2Extension": {"message": {"audioMessage": {"ptt": True}}}},
            "audio",
            None,
        ),
        (
            {
                "messageContextInfo": {},
                "ephemeralMessage": {
                    "message": {
                        "viewOnceMessageV2": {
                            "message": {
                                "documentWithCaptionMessage": {
                                    "message": {"documentMessage": {"caption": "fundo"}}
                                }
                            }
                        }
                    }
                },
            },
            "documento",
            "fundo",
        ),
    ],
    ids=["ephemeral", "viewOnce", "viewOnceV2", "viewOnceV2Extension", "nested"],
)
def test_wrappers_are_unwrapped(message: dict[str, Any], kind: str, text: str | None) -> None:
    result = chat_message(upsert(message))
    assert (result.kind, result.text) == (kind, text)


def test_wrapped_media_keeps_the_wrapper_in_media_key_and_reads_inner_context() -> None:
    message = {
        "ephemeralMessage": {
            "message": {
                "audioMessage": {"ptt": True, "seconds": 4, "contextInfo": {"stanzaId": "Q1"}}
            }
        }
    }
    body = upsert(message)
    result = chat_message(body)
    assert (result.is_voice_note, result.seconds, result.quoted_message_id) == (True, 4, "Q1")
    assert result.media_key == {"key": body["data"]["key"], "message": message}


def test_absurdly_deep_wrapping_is_ignored_not_an_error() -> None:
    message: dict[str, Any] = {"conversation": "fundo"}
    for _ in range(50):
        message = {"ephemeralMessage": {"message": message}}
    assert event_of(upsert(message)) == Ignored("no content")


# -- reactions ---------------------------------------------------------------------------------------


def test_reaction_removal_has_an_empty_emoji() -> None:
    body = load("messages.upsert.reaction.json")
    body["data"]["message"]["reactionMessage"]["text"] = ""
    assert event_of(body) == Reaction(
        CONTACT, "F1E2D3C4B5A69788796A5B4C3D2E1F00", "3EB0A1B2C3D4E5F6A7B8C9", ""
    )


def test_reaction_in_a_group() -> None:
    reaction = {"key": {"remoteJid": GROUP, "fromMe": True, "id": "TARGET"}, "text": "❤️"}
    assert event_of(upsert({"reactionMessage": reaction})) == Reaction(GROUP, "MSG1", "TARGET", "❤️")


@pytest.mark.parametrize(
    "reaction",
    [{"text": "👍"}, {"key": {"id": 5}, "text": "👍"}, {"key": "k"}, "👍", {"key": {"id": ""}}],
    ids=repr,
)
def test_reaction_without_a_target_is_ignored(reaction: object) -> None:
    assert event_of(upsert({"reactionMessage": reaction})) == Ignored("malformed reaction")


def test_reaction_with_non_string_emoji_counts_as_removal() -> None:
    reaction = {"key": {"id": "TARGET"}, "text": None}
    assert event_of(upsert({"reactionMessage": reaction})) == Reaction(GROUP, "MSG1", "TARGET", "")


# -- edits and deletes -------------------------------------------------------------------------------


def legacy_edit(protocol: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """v1 / v2 ≤ 2.2.3: a phone edit as an upsert with ``messageType: editedMessage``."""
    return upsert(
        {"editedMessage": {"message": {"protocolMessage": protocol}}},
        key=group_key(id="CARRIER1"),
        messageType="editedMessage",
        **fields,
    )


EDIT_PROTOCOL: dict[str, Any] = {
    "key": {"remoteJid": GROUP, "fromMe": False, "id": "ORIG1", "participant": MEMBER},
    "type": "MESSAGE_EDIT",
    "editedMessage": {"conversation": "corrigido"},
}


def test_legacy_edited_message_upsert_edits_the_target() -> None:
    assert event_of(legacy_edit(deepcopy(EDIT_PROTOCOL))) == MessageEdited(
        GROUP, "ORIG1", "corrigido", SENT
    )


def test_legacy_edit_prefers_its_own_timestamp_ms() -> None:
    protocol = deepcopy(EDIT_PROTOCOL) | {"timestampMs": str(EDIT_MS)}
    assert event_of(legacy_edit(protocol)) == MessageEdited(GROUP, "ORIG1", "corrigido", EDITED)


def test_legacy_edit_without_any_timestamp_uses_received_at() -> None:
    event = event_of(legacy_edit(deepcopy(EDIT_PROTOCOL), messageTimestamp=None))
    assert isinstance(event, MessageEdited)
    assert event.edited_at == RECEIVED


def test_legacy_edit_in_a_private_chat_uses_the_carrier_chat() -> None:
    # The nested key is written from the editor's side: remoteJid is *our* JID (issue #1647).
    protocol = deepcopy(EDIT_PROTOCOL)
    protocol["key"] = {"remoteJid": SENDER, "fromMe": True, "id": "ORIG1"}
    body = upsert(
        {"editedMessage": {"message": {"protocolMessage": protocol}}},
        key={"remoteJid": CONTACT, "fromMe": False, "id": "CARRIER1"},
    )
    assert event_of(body) == MessageEdited(CONTACT, "ORIG1", "corrigido", SENT)


def test_legacy_edit_inside_an_ephemeral_wrapper() -> None:
    protocol = deepcopy(EDIT_PROTOCOL)
    protocol["editedMessage"] = {"extendedTextMessage": {"text": "novo texto"}}
    message = {
        "ephemeralMessage": {
            "message": {"editedMessage": {"message": {"protocolMessage": protocol}}}
        }
    }
    assert event_of(upsert(message)) == MessageEdited(GROUP, "ORIG1", "novo texto", SENT)


def test_legacy_edit_with_a_malformed_target_key_is_rejected() -> None:
    protocol = deepcopy(EDIT_PROTOCOL)
    protocol["key"] = {"remoteJid": GROUP, "id": 5}
    with pytest.raises(
        PayloadError,
        match=r"^data\.message\.editedMessage\.message\.protocolMessage\.key\.id must be",
    ):
        events_of(legacy_edit(protocol))


def test_edited_message_wrapper_without_protocol_message_is_ignored() -> None:
    body = upsert({"editedMessage": {"message": {"conversation": "sem alvo"}}})
    assert event_of(body) == Ignored("edit without target")


def test_revoke_protocol_message_in_an_upsert_deletes_the_target() -> None:
    protocol = {"key": {"remoteJid": GROUP, "fromMe": False, "id": "ORIG1"}, "type": "REVOKE"}
    assert event_of(upsert({"protocolMessage": protocol})) == MessageDeleted(GROUP, "ORIG1", SENT)


@pytest.mark.parametrize(
    "protocol",
    [
        {"type": "EPHEMERAL_SETTING", "ephemeralExpiration": 604800},
        {"type": 3},
        {"type": "HISTORY_SYNC_NOTIFICATION"},
        {},
        "REVOKE",
    ],
    ids=repr,
)
def test_other_protocol_messages_in_an_upsert_are_ignored(protocol: object) -> None:
    assert event_of(upsert({"protocolMessage": protocol})) == Ignored("protocol message")


def edited_event(data: object, event: str = "messages.edited") -> dict[str, Any]:
    return webhook(event, data)


@pytest.mark.parametrize("edit_type", ["MESSAGE_EDIT", 14, "14", "message_edit"])
@pytest.mark.parametrize("event", ["messages.edited", "send.message.update"])
def test_messages_edited_message_edit_in_any_enum_encoding(edit_type: object, event: str) -> None:
    data = deepcopy(EDIT_PROTOCOL) | {"type": edit_type, "timestampMs": str(EDIT_MS)}
    assert event_of(edited_event(data, event)) == MessageEdited(GROUP, "ORIG1", "corrigido", EDITED)


@pytest.mark.parametrize("revoke_type", ["REVOKE", 0, "0"])
@pytest.mark.parametrize("event", ["messages.edited", "send.message.update"])
def test_messages_edited_revoke_in_any_enum_encoding(revoke_type: object, event: str) -> None:
    data = {"key": {"remoteJid": GROUP, "fromMe": False, "id": "ORIG1"}, "type": revoke_type}
    assert event_of(edited_event(data, event)) == MessageDeleted(GROUP, "ORIG1", RECEIVED)


def test_messages_edited_revoke_uses_its_timestamp_ms_when_present() -> None:
    data = {"key": {"remoteJid": GROUP, "id": "ORIG1"}, "type": 0, "timestampMs": EDIT_MS}
    assert event_of(edited_event(data)) == MessageDeleted(GROUP, "ORIG1", EDITED)


@pytest.mark.parametrize(
    "protocol_type", ["EPHEMERAL_SETTING", 3, "HISTORY_SYNC_NOTIFICATION", 5, False, None, [14]]
)
def test_messages_edited_other_protocol_types_are_ignored(protocol_type: object) -> None:
    data = {"key": {"remoteJid": GROUP, "id": "ORIG1"}, "type": protocol_type}
    assert event_of(edited_event(data)) == Ignored("protocol message")


def test_messages_edited_without_type_but_with_edited_message_is_an_edit() -> None:
    data = {
        "key": {"remoteJid": GROUP, "id": "ORIG1"},
        "editedMessage": {"conversation": "sem tipo"},
    }
    assert event_of(edited_event(data)) == MessageEdited(GROUP, "ORIG1", "sem tipo", RECEIVED)


@pytest.mark.parametrize(
    ("edited", "text"),
    [
        ({"conversation": "novo"}, "novo"),
        ({"extendedTextMessage": {"text": "novo ext"}}, "novo ext"),
        ({"imageMessage": {"caption": "nova legenda"}}, "nova legenda"),
        ({"message": {"conversation": "dentro"}}, "dentro"),
        ({"messageContextInfo": {}, "conversation": "com contexto"}, "com contexto"),
        ({}, None),
        ("novo", None),
        (None, None),
    ],
    ids=repr,
)
def test_edit_text_from_the_edited_message(edited: object, text: str | None) -> None:
    data = {
        "key": {"remoteJid": GROUP, "id": "ORIG1"},
        "type": "MESSAGE_EDIT",
        "editedMessage": edited,
    }
    assert event_of(edited_event(data)) == MessageEdited(GROUP, "ORIG1", text, RECEIVED)


def test_edit_text_is_cleaned_like_message_text() -> None:
    data = {
        "key": {"remoteJid": GROUP, "id": "ORIG1"},
        "type": 14,
        "editedMessage": {"conversation": "a\x00b"},
    }
    event = event_of(edited_event(data))
    assert isinstance(event, MessageEdited)
    assert event.text == "ab"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "MESSAGE_EDIT"}, r"^data\.key must be an object \(it is missing\)$"),
        ({"type": "REVOKE", "key": {"remoteJid": GROUP}}, r"^data\.key\.id must be a non-empty"),
        ({"type": 14, "key": {"id": "ORIG1"}}, r"^data\.key\.remoteJid must be a non-empty"),
        ("edit", r"^data must be an object \(got a string\)$"),
    ],
)
def test_malformed_edit_or_revoke_is_rejected(data: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        events_of(edited_event(data))


def test_messages_edited_tolerates_a_whole_carrier_message() -> None:
    carrier = legacy_edit(deepcopy(EDIT_PROTOCOL))["data"]
    assert event_of(edited_event(carrier)) == MessageEdited(GROUP, "ORIG1", "corrigido", SENT)
    plain = upsert({"conversation": "não é edição"})["data"]
    assert event_of(edited_event(plain)) == Ignored("not an edit")


def test_messages_delete_baileys_key_in_a_group() -> None:
    data = {"remoteJid": GROUP, "fromMe": False, "id": "ORIG1", "participant": MEMBER}
    assert event_of(webhook("messages.delete", data)) == MessageDeleted(GROUP, "ORIG1", RECEIVED)


def test_messages_delete_stored_row_uses_the_key_id_not_the_database_id() -> None:
    row = {
        "id": "cmh0k2x9a0007qk8w3f5b1z2c",
        "instanceId": "7c1f2e4a-9b3d-4e8f-a2c5-1d6e8f9a0b3c",
        "key": {"remoteJid": CONTACT, "fromMe": True, "id": "3EB0A1B2C3D4E5F6A7B8C9"},
        "messageType": "conversation",
        "status": "DELETED",
        "source": "web",
        "messageTimestamp": SENT_SECONDS,
        "pushName": "Você",
        "participant": None,
        "message": {"conversation": "Olá! Seu pedido #1234 foi enviado."},
    }
    assert event_of(webhook("messages.delete", row)) == MessageDeleted(
        CONTACT, "3EB0A1B2C3D4E5F6A7B8C9", RECEIVED
    )


def test_messages_delete_v1_key_with_device_suffix() -> None:
    data = {"remoteJid": "5511988880001:2@s.whatsapp.net", "fromMe": False, "id": "V1DEL"}
    assert event_of(webhook("messages.delete", data)) == MessageDeleted(CONTACT, "V1DEL", RECEIVED)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, r"^data\.remoteJid must be a non-empty string \(it is missing\)$"),
        ({"remoteJid": GROUP, "id": 5}, r"^data\.id must be a non-empty string \(got a number\)$"),
        ({"id": "cuid", "key": {"id": "X"}}, r"^data\.key\.remoteJid must be a non-empty string"),
        ({"id": "cuid", "key": "X"}, r"^data\.key must be an object \(got a string\)$"),
        ([], None),
    ],
)
def test_malformed_delete_is_rejected(data: object, message: str | None) -> None:
    if message is None:
        assert events_of(webhook("messages.delete", data)) == [Ignored("empty data")]
        return
    with pytest.raises(PayloadError, match=message):
        events_of(webhook("messages.delete", data))


# -- messages.update -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", ["DELETED", "READ", "DELIVERY_ACK", "SERVER_ACK", "PLAYED", None]
)
def test_status_receipts_are_ignored_and_deleted_is_not_a_delete(status: object) -> None:
    body = load("messages.update.json")
    body["data"].update(keyId="ORIG1", remoteJid=GROUP, status=status, participant=MEMBER)
    assert events_of(body) == [Ignored("receipt")]


def test_v1_receipt_is_ignored() -> None:
    data = {
        "remoteJid": GROUP,
        "fromMe": True,
        "id": "3EB0V1",
        "participant": MEMBER,
        "status": "DELIVERY_ACK",
        "datetime": 1761055392000,
        "owner": INSTANCE,
        "pollUpdates": [],
    }
    assert events_of(webhook("messages.update", data)) == [Ignored("receipt")]


def test_update_with_a_baileys_edit_body_is_an_edit() -> None:
    # ≤ 2.2.3 shape: the raw Baileys update, edit inside update.message.
    protocol = deepcopy(EDIT_PROTOCOL) | {"timestampMs": str(EDIT_MS)}
    data = {
        "key": {"remoteJid": GROUP, "fromMe": False, "id": "ORIG1", "participant": MEMBER},
        "update": {"message": {"editedMessage": {"message": {"protocolMessage": protocol}}}},
    }
    assert events_of(webhook("messages.update", data)) == [
        MessageEdited(GROUP, "ORIG1", "corrigido", EDITED)
    ]


def test_update_with_deleted_status_and_protocol_edit_body_is_an_edit() -> None:
    protocol = {
        "key": {"remoteJid": GROUP, "id": "ORIG1"},
        "type": 14,
        "editedMessage": {"conversation": "editado"},
    }
    data = {
        "keyId": "ORIG1",
        "remoteJid": GROUP,
        "status": "DELETED",
        "message": {"protocolMessage": protocol},
    }
    assert event_of(webhook("messages.update", data)) == MessageEdited(
        GROUP, "ORIG1", "editado", RECEIVED
    )


def test_update_with_a_bare_edited_message_edits_the_updated_message() -> None:
    data = {
        "keyId": "ORIG1",
        "remoteJid": GROUP,
        "fromMe": False,
        "editedMessage": {"conversation": "novo"},
    }
    assert event_of(webhook("messages.update", data)) == MessageEdited(
        GROUP, "ORIG1", "novo", RECEIVED
    )
    v1 = {
        "remoteJid": GROUP,
        "id": "ORIG2",
        "message": {"editedMessage": {"message": {"conversation": "v1"}}},
    }
    assert event_of(webhook("messages.update", v1)) == MessageEdited(GROUP, "ORIG2", "v1", RECEIVED)


def test_update_with_a_wrapped_edit_body_is_an_edit() -> None:
    protocol = deepcopy(EDIT_PROTOCOL)
    wrapped = {"ephemeralMessage": {"message": {"protocolMessage": protocol}}}
    data = {"keyId": "ORIG1", "remoteJid": GROUP, "message": wrapped}
    assert event_of(webhook("messages.update", data)) == MessageEdited(
        GROUP, "ORIG1", "corrigido", RECEIVED
    )


def test_update_edit_without_any_target_is_ignored() -> None:
    data = {"status": "DELETED", "editedMessage": {"conversation": "novo"}}
    assert event_of(webhook("messages.update", data)) == Ignored("edit without target")


def test_update_with_a_revoke_body_is_not_a_delete() -> None:
    protocol = {"key": {"remoteJid": GROUP, "id": "ORIG1"}, "type": "REVOKE"}
    data = {"keyId": "ORIG1", "remoteJid": GROUP, "message": {"protocolMessage": protocol}}
    assert event_of(webhook("messages.update", data)) == Ignored("receipt")


def test_update_arrays_give_one_event_per_item() -> None:
    receipt = load("messages.update.json")["data"]
    assert events_of(webhook("messages.update", [receipt, receipt])) == [Ignored("receipt")] * 2


def test_update_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(PayloadError, match=r"^data must be an object \(got a number\)$"):
        events_of(webhook("messages.update", 5))


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
            )
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


# -- fuzzing: only events or PayloadError ------------------------------------------------------------

VOCABULARY = [
    "event", "instance", "data", "apikey", "sender", "key", "remoteJid", "remoteJidAlt", "id",
    "fromMe", "participant", "participantAlt", "participantPn", "senderPn", "previousRemoteJid",
    "message", "messageTimestamp", "timestampMs", "pushName", "contextInfo", "stanzaId",
    "conversation", "extendedTextMessage", "text", "caption", "imageMessage", "audioMessage",
    "videoMessage", "documentMessage", "ptt", "seconds", "base64", "documentWithCaptionMessage",
    "ephemeralMessage", "viewOnceMessageV2", "editedMessage", "protocolMessage", "type",
    "reactionMessage", "pollCreationMessageV3", "options", "optionName", "name",
    "locationMessage", "address", "contactsArrayMessage", "contacts", "displayName", "update",
    "keyId", "status", "state", "subject", "low", "high",
]  # fmt: skip
CONTENT_KEYS = [k for k in VOCABULARY if k == "conversation" or "Message" in k]
EVENTS = [
    "messages.upsert",
    "send.message",
    "messages.edited",
    "send.message.update",
    "messages.delete",
    "messages.update",
    "groups.upsert",
    "groups.update",
    "group-participants.update",
    "connection.update",
    "qrcode.updated",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["", " ", "\x00", GROUP, MEMBER, MEMBER_LID, "MESSAGE_EDIT", "REVOKE"])
)
json_keys = st.sampled_from(VOCABULARY) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=5)
    ),
    max_leaves=15,
)
timestamps = (
    json_values
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=0, max_value=2**70).map(str)
    | st.fixed_dictionaries(
        {"low": st.integers(-(2**32), 2**32) | json_values, "high": st.integers(-(2**20), 2**20)}
    )
)
jids = (
    st.sampled_from([GROUP, CONTACT, MEMBER_LID, "status@broadcast", "x:1@lid", "", "  "])
    | json_values
)
key_fields = {
    "fromMe": st.booleans() | json_values,
    "participant": jids,
    "participantAlt": jids,
    "remoteJidAlt": jids,
    "senderPn": jids,
}
valid_keys = st.fixed_dictionaries(
    {
        "remoteJid": st.sampled_from([GROUP, CONTACT, MEMBER_LID]),
        "id": st.sampled_from(["M1", "M2"]),
    },
    optional=key_fields,
)
keys = valid_keys | st.fixed_dictionaries(
    {"remoteJid": jids, "id": st.sampled_from(["M1", "", "X" * 200]) | json_values},
    optional=key_fields,
)
messages: st.SearchStrategy[Any] = st.deferred(
    lambda: st.dictionaries(st.sampled_from(CONTENT_KEYS), contents, max_size=3) | json_values
)
contents: st.SearchStrategy[Any] = st.deferred(
    lambda: (
        json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "message": messages,
                "key": keys | json_values,
                "type": st.sampled_from(["MESSAGE_EDIT", "REVOKE", 0, 14, "14"]) | json_values,
                "editedMessage": messages,
                "timestampMs": timestamps,
                "text": json_values,
                "caption": json_values,
                "options": json_values,
                "seconds": timestamps,
                "ptt": json_values,
                "contextInfo": json_values,
                "name": json_values,
            },
        )
    )
)
message_data = st.fixed_dictionaries(
    {},
    optional={
        "key": keys | json_values,
        "message": messages,
        "messageTimestamp": timestamps,
        "pushName": json_values,
        "contextInfo": json_values,
        "type": st.sampled_from(["MESSAGE_EDIT", "REVOKE", 0, 14]) | json_values,
        "editedMessage": messages,
        "timestampMs": timestamps,
        "update": st.fixed_dictionaries({}, optional={"message": messages, "key": keys}),
        "keyId": json_values,
        "remoteJid": jids,
        "id": json_values,
        "status": st.sampled_from(["DELETED", "READ"]) | json_values,
        "state": json_values,
        "subject": json_values,
    },
)
data_values = message_data | st.lists(message_data, max_size=3) | json_values
bodies = json_values | st.fixed_dictionaries(
    {"event": st.sampled_from(EVENTS) | json_values, "instance": st.just(INSTANCE) | json_values},
    optional={"data": data_values, "apikey": json_values, "sender": jids},
)
EVENT_TYPES = (
    ChatMessage,
    Reaction,
    MessageEdited,
    MessageDeleted,
    GroupsSeen,
    ConnectionChanged,
    Ignored,
)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_well_formed(events: list[Event]) -> None:
    assert events
    for event in events:
        assert isinstance(event, EVENT_TYPES)
        if isinstance(event, ChatMessage | Reaction | MessageEdited | MessageDeleted):
            assert event.chat_jid
            assert event.chat_jid == event.chat_jid.strip().lower()
            assert 0 < len(event.message_id) <= 128
        if isinstance(event, ChatMessage):
            assert event.sent_at.utcoffset() == timedelta(0)
            assert event.text is None or (
                "\x00" not in event.text and len(event.text) <= MAX_TEXT_LENGTH
            )
            assert event.author_number is None or re.fullmatch(
                r"[0-9]+(@lid)?", event.author_number
            )
        if isinstance(event, MessageEdited):
            assert event.edited_at.utcoffset() == timedelta(0)
        if isinstance(event, MessageDeleted):
            assert event.deleted_at.utcoffset() == timedelta(0)


def attempt(envelope: Envelope) -> list[Event] | str:
    """The events, or the PayloadError's message (any other exception fails the test)."""
    try:
        return parse_events(envelope, RECEIVED)
    except PayloadError as error:
        return str(error)


def assert_events_or_rejection(result: list[Event] | str) -> None:
    if isinstance(result, str):
        assert result  # a message naming the field
    else:
        assert_well_formed(result)


@FUZZ
@given(body=bodies)
def test_any_body_gives_an_envelope_or_a_payload_error(body: object) -> None:
    try:
        envelope = parse_envelope(body)
    except PayloadError as error:
        rejection = str(error)
    else:
        assert envelope.event == envelope.event.strip().lower()
        assert 0 < len(envelope.instance) <= 255
        assert_events_or_rejection(attempt(envelope))
        return
    assert rejection


@FUZZ
@given(
    event=st.sampled_from(EVENTS),
    data=data_values,
    sender=st.none() | jids.filter(lambda j: isinstance(j, str)),
)
def test_any_data_of_any_event_gives_events_or_a_payload_error(
    event: str, data: object, sender: str | None
) -> None:
    envelope = Envelope(event=event, instance=INSTANCE, apikey=None, sender=sender, data=data)
    assert_events_or_rejection(attempt(envelope))


@FUZZ
@given(message=messages, timestamp=timestamps, push_name=json_values, context=json_values)
def test_a_valid_key_with_any_content_never_fails(
    message: object, timestamp: object, push_name: object, context: object
) -> None:
    data = {
        "key": group_key(),
        "message": message,
        "messageTimestamp": timestamp,
        "pushName": push_name,
        "contextInfo": context,
    }
    result = attempt(parse_envelope(webhook("messages.upsert", data)))
    if isinstance(result, str):
        # Only a malformed key *inside* an edit/revoke protocol message may be rejected.
        assert "protocolMessage.key" in result
    else:
        assert len(result) == 1
        assert_well_formed(result)
