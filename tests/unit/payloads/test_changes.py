"""Edits, deletes and messages.update in every version's shape."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest

from intellizap.evolution.payloads import (
    Ignored,
    MessageDeleted,
    MessageEdited,
    PayloadError,
)
from tests.unit.payloads.helpers import (
    CONTACT,
    EDIT_MS,
    EDITED,
    GROUP,
    INSTANCE,
    MEMBER,
    RECEIVED,
    SENDER,
    SENT,
    SENT_SECONDS,
    event_of,
    events_of,
    group_key,
    load,
    upsert,
    webhook,
)

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
