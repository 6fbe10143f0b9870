"""Fuzzing: any body gives events or a PayloadError, never another exception."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

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
from tests.unit.payloads.helpers import (
    CONTACT,
    GROUP,
    INSTANCE,
    MEMBER,
    MEMBER_LID,
    RECEIVED,
    group_key,
    webhook,
)

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
    # what the text of the other content types is read from (payloads/text.py)
    "buttonsMessage", "buttonsResponseMessage", "listMessage", "listResponseMessage",
    "templateMessage", "templateButtonReplyMessage", "interactiveMessage",
    "interactiveResponseMessage", "highlyStructuredMessage", "requestPaymentMessage",
    "sendPaymentMessage", "pollResultSnapshotMessage", "richResponseMessage", "eventMessage",
    "groupInviteMessage", "productMessage", "orderMessage", "associatedChildMessage",
    "pollCreationMessageV4", "selectedDisplayText", "buttons", "buttonText", "sections", "rows",
    "title", "description", "hydratedTemplate", "hydratedButtons", "quickReplyButton",
    "hydratedHsm", "body", "header", "footer", "nativeFlowMessage", "buttonParamsJson",
    "carouselMessage", "cards", "noteMessage", "amount", "amount1000", "value", "offset",
    "currencyCode", "pollVotes", "optionVoteCount", "submessages", "messageText", "fileName",
    "location", "product", "groupName",
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
