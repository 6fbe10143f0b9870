"""Value encodings: timestamps in every encoding and unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intellizap.evolution.payloads import (
    MessageEdited,
)
from tests.unit.payloads.helpers import (
    EDIT_MS,
    EDITED,
    RECEIVED,
    SENT,
    SENT_SECONDS,
    chat_message,
    event_of,
    load,
    upsert,
)

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
