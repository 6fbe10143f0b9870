"""Every captured Evolution fixture parses to the expected events."""

from __future__ import annotations

from typing import Any

import pytest

from intellizap.evolution.payloads import (
    ChatMessage,
    ConnectionChanged,
    Envelope,
    GroupsSeen,
    Ignored,
    MessageDeleted,
    MessageEdited,
    Reaction,
    parse_envelope,
)
from tests.unit.payloads.helpers import (
    APIKEY,
    CONTACT,
    EDITED,
    FIXTURES,
    GROUP,
    INSTANCE,
    RECEIVED,
    SENDER,
    SENT,
    chat_message,
    events_of,
    load,
)

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
        "media_base64": None,
        "media_key": None,
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
            media_key=_media_key(b),
        )
    ],
    "messages.upsert.audio.base64.json": lambda b: [
        _message(
            b,
            author_number="5511988880001",
            kind="audio",
            media_base64="T2dnUwACAAAAAAAAAAAAAAAAAAAAAAAAAAABE09wdXNIZWFk",
            media_key=_media_key(b),
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
