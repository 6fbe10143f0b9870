"""New messages: keys, bad message data, v1 shapes, authors and LIDs, reactions."""

from __future__ import annotations

from typing import Any

import pytest

from intellizap.evolution.payloads import (
    INVALID_GROUP_JID,
    ChatMessage,
    Ignored,
    PayloadError,
    Reaction,
    announced_duration,
    parse_envelope,
)
from tests.unit.payloads.helpers import (
    CONTACT,
    CONTACT_LID,
    GROUP,
    INSTANCE,
    MEMBER,
    MEMBER_LID,
    SENDER,
    SENT,
    SENT_SECONDS,
    chat_message,
    event_of,
    events_of,
    group_key,
    load,
    upsert,
    webhook,
)

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
        (
            {"key": {"remoteJid": "@s.whatsapp.net", "id": "M1"}},
            r"^data\.key\.remoteJid must be a JID",
        ),
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


def test_v1_extended_text_message_left_in_place_gives_its_text() -> None:
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
        media_base64=None,
        media_key=None,
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
    assert (result.kind, result.text) == ("documento", "contrato.pdf\nSegue o contrato")
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
    assert result.kind == "audio"
    assert announced_duration(result.media_key["message"] if result.media_key else None) == 12
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


@pytest.mark.parametrize(
    "jid",
    [
        "@g.us",
        "<b>x</b>@g.us",
        "1" * 240 + "@g.us",
        "120363401234567890$@g.us",
        "1203634012345678901234567890@g.us",
        "12036340-@g.us",
        "-12036340@g.us",
        "1-2-3@g.us",
    ],
)
def test_a_chat_ending_in_g_us_that_is_not_a_group_jid_is_ignored_in_every_event(jid: str) -> None:
    target = {"remoteJid": jid, "fromMe": False, "id": "T1"}
    bodies = [
        upsert({"conversation": "oi"}, key=group_key(remoteJid=jid)),
        upsert({"conversation": "oi"}, key=group_key(remoteJid=jid), event="send.message"),
        webhook("messages.edited", {"key": target, "type": "REVOKE"}),
        webhook("messages.delete", target),
        webhook("messages.update", {"key": target, "update": {"message": {"editedMessage": {}}}}),
    ]
    for body in bodies:
        assert events_of(body) == [Ignored(INVALID_GROUP_JID)], body["event"]


@pytest.mark.parametrize(
    "jid",
    ["120363401234567890@g.us", "5511999990000-1600000000@g.us", "1@g.us", " 1203634@G.US "],
)
def test_group_jids_of_both_generations_are_accepted(jid: str) -> None:
    assert chat_message(upsert({"conversation": "oi"}, key=group_key(remoteJid=jid))).chat_jid == (
        jid.strip().lower()
    )
