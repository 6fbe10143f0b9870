"""Content types, their kinds and texts, and the wrappers around them."""

from __future__ import annotations

from typing import Any

import pytest

from intellizap.evolution.payloads import (
    MAX_TEXT_LENGTH,
    Ignored,
    announced_duration,
)
from intellizap.transcription.service import _announced_seconds
from tests.unit.payloads.helpers import (
    GROUP,
    chat_message,
    event_of,
    load,
    upsert,
)

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
        ({"documentMessage": {"fileName": "a.pdf", "caption": "nota"}}, "documento", "a.pdf\nnota"),
        ({"documentMessage": {"fileName": "a.pdf"}}, "documento", "a.pdf"),
        ({"documentMessage": {"title": "Ata", "caption": "Ata"}}, "documento", "Ata"),
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
        ({"pollCreationMessageV3": {"name": 5, "options": 5}}, "enquete", None),
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
        ({"interactiveMessage": {"body": {"text": "Escolha"}}}, "interativa", "Escolha"),
        ({"buttonsResponseMessage": {"selectedDisplayText": "Sim"}}, "resposta", "Sim"),
        ({"brandNewMessage": {"text": "Olá"}}, "brandNewMessage", None),
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
    ("message", "seconds"),
    [
        ({"audioMessage": {"ptt": True, "seconds": 7}}, 7),
        ({"audioMessage": {"seconds": "7"}}, 7),
        ({"audioMessage": {"seconds": {"low": 9, "high": 0}}}, 9),
        ({"audioMessage": {"seconds": -3}}, None),
        ({"audioMessage": {"seconds": "x"}}, None),
        ({"audioMessage": {"seconds": True}}, None),
        ({"audioMessage": {}}, None),
        ({"videoMessage": {"seconds": 5.0}}, 5),
        ({"ptvMessage": {"seconds": 5}}, 5),
        ({"imageMessage": {"seconds": 5}}, None),
        ({"viewOnceMessageV2Extension": {"message": {"audioMessage": {"seconds": 4}}}}, 4),
        ({"messageContextInfo": {}, "audioMessage": {"seconds": 3}}, 3),
        ("audio", None),
        (None, None),
    ],
    ids=repr,
)
def test_announced_duration_of_audio_and_video_in_any_encoding(
    message: object, seconds: int | None
) -> None:
    assert announced_duration(message) == seconds


def test_transcription_reads_the_duration_the_parser_reads() -> None:
    body = upsert({"audioMessage": {"ptt": True, "seconds": {"low": 12, "high": 0}}})
    media = chat_message(body).media_key
    assert media is not None
    assert _announced_seconds(media) == 12


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


def test_wrapped_media_keeps_the_wrapper_in_media_key() -> None:
    message = {
        "ephemeralMessage": {
            "message": {
                "audioMessage": {"ptt": True, "seconds": 4, "contextInfo": {"stanzaId": "Q1"}}
            }
        }
    }
    body = upsert(message)
    result = chat_message(body)
    assert result.kind == "audio"
    assert result.media_key == {"key": body["data"]["key"], "message": message}
    assert announced_duration(result.media_key["message"]) == 4


def test_absurdly_deep_wrapping_is_ignored_not_an_error() -> None:
    message: dict[str, Any] = {"conversation": "fundo"}
    for _ in range(50):
        message = {"ephemeralMessage": {"message": message}}
    assert event_of(upsert(message)) == Ignored("no content")
