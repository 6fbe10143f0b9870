"""Which content a message holds, through its wrappers, and what each kind of content is.

The table below classifies every field of WhatsApp's ``proto.Message`` (docs/message-types.md,
tests/fixtures/whatsapp/): a chat line with its ``tipo`` and text, a wrapper whose ``message``
holds the real content, a change to another message (handled in ``messages``/``changes``), a
notice that is not a chat line, or metadata that comes beside the content. A field WhatsApp adds
later is stored with its own name as ``tipo`` and no text until it gets a row here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from intellizap.evolution.payloads import text as t
from intellizap.evolution.payloads.values import long


@dataclass(frozen=True, slots=True)
class Kind:
    tipo: str
    """``mensagens.tipo``."""
    text: Callable[[object], str | None]
    """The text a member of the group reads in it."""
    media: bool = False
    """A downloadable attachment (``getBase64FromMediaMessage`` can fetch it)."""


def _none(value: object) -> str | None:
    return None


CHAT_LINES: Final[Mapping[str, Kind]] = {
    "conversation": Kind("texto", t.plain),
    "extendedTextMessage": Kind("texto", t.text_field),
    "richResponseMessage": Kind("texto", t.rich_response),
    "imageMessage": Kind("imagem", t.caption, media=True),
    "videoMessage": Kind("video", t.caption, media=True),
    "ptvMessage": Kind("video", t.caption, media=True),
    "audioMessage": Kind("audio", _none, media=True),
    "documentMessage": Kind("documento", t.document, media=True),
    "stickerMessage": Kind("figurinha", _none, media=True),
    "stickerPackMessage": Kind("figurinha", t.sticker_pack),
    "locationMessage": Kind("localizacao", t.location),
    "liveLocationMessage": Kind("localizacao", t.caption),
    "contactMessage": Kind("contato", t.contact),
    "contactsArrayMessage": Kind("contato", t.contacts),
    "pollCreationMessage": Kind("enquete", t.poll),
    "pollCreationMessageV2": Kind("enquete", t.poll),
    "pollCreationMessageV3": Kind("enquete", t.poll),
    "pollResultSnapshotMessage": Kind("enquete", t.poll_results),
    "eventMessage": Kind("evento", t.event),
    "scheduledCallCreationMessage": Kind("chamada", t.title),
    "bcallMessage": Kind("chamada", t.caption),
    "groupInviteMessage": Kind("convite", t.group_invite),
    "newsletterAdminInviteMessage": Kind("convite", t.channel_invite),
    "buttonsMessage": Kind("interativa", t.buttons),
    "listMessage": Kind("interativa", t.list_message),
    "templateMessage": Kind("interativa", t.template),
    "highlyStructuredMessage": Kind("interativa", t.structured),
    "interactiveMessage": Kind("interativa", t.interactive),
    "buttonsResponseMessage": Kind("resposta", t.selected_button),
    "templateButtonReplyMessage": Kind("resposta", t.selected_button),
    "listResponseMessage": Kind("resposta", t.selected_row),
    "interactiveResponseMessage": Kind("resposta", t.interactive_response),
    "productMessage": Kind("produto", t.product),
    "orderMessage": Kind("pedido", t.order),
    "sendPaymentMessage": Kind("pagamento", t.payment),
    "requestPaymentMessage": Kind("pagamento", t.payment_request),
    "invoiceMessage": Kind("pagamento", t.invoice),
}

#: Their ``message`` is the content (disappearing, view-once, captioned document, mentions,
#: albums, bots, statuses, newer poll versions…).
WRAPPERS: Final = frozenset(
    {
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
        "editedMessage",
        "groupMentionedMessage",
        "botInvokeMessage",
        "botTaskMessage",
        "lottieStickerMessage",
        "associatedChildMessage",
        "commentMessage",
        "questionMessage",
        "deviceSentMessage",
        "statusMentionMessage",
        "groupStatusMentionMessage",
        "groupStatusMessage",
        "statusAddYours",
        "limitSharingMessage",
        "pollCreationMessageV4",
        "pollCreationMessageV5",
    }
)

#: Changes to another message: ``protocolMessage`` (edits, revokes, settings) and reactions.
CHANGES: Final = frozenset({"protocolMessage", "reactionMessage"})

#: Known content that is not a chat line: acknowledged, never stored (reason for the log).
NOT_CHAT_LINES: Final[Mapping[str, str]] = {
    "pollUpdateMessage": "poll vote",
    "encReactionMessage": "encrypted reaction",
    "encCommentMessage": "encrypted comment",
    "encEventResponseMessage": "event response",
    "secretEncryptedMessage": "encrypted change",
    "pinInChatMessage": "pin",
    "keepInChatMessage": "keep in chat",
    "declinePaymentRequestMessage": "payment request declined",
    "cancelPaymentRequestMessage": "payment request cancelled",
    "paymentInviteMessage": "payment invite",
    "scheduledCallEditMessage": "scheduled call changed",
    "callLogMesssage": "call log",  # sic: WhatsApp's own spelling
    "call": "call signalling",
    "chat": "chat metadata",
    "albumMessage": "album announcement",
    "eventCoverImage": "event cover",
    "pollCreationOptionImageMessage": "poll option image",
    "requestPhoneNumberMessage": "phone number request",
    "placeholderMessage": "placeholder",
    "messageHistoryBundle": "shared history",
    "messageHistoryNotice": "shared history notice",
    "statusNotificationMessage": "status notification",
    "stickerSyncRmrMessage": "sticker sync",
}

#: Beside the content, never content: skipped when looking for it.
METADATA: Final = frozenset(
    {
        "messageContextInfo",
        "senderKeyDistributionMessage",
        "fastRatchetKeySenderKeyDistributionMessage",
    }
)

_KNOWN: Final = frozenset(CHAT_LINES) | WRAPPERS | CHANGES | frozenset(NOT_CHAT_LINES)
_CONTENT_KEY: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
MAX_WRAPPER_DEPTH: Final = 8


@dataclass(frozen=True, slots=True)
class Content:
    type: str
    """The content key, e.g. ``conversation`` or ``imageMessage``."""
    value: object
    via_edit: bool
    """Reached through an ``editedMessage`` wrapper (a legacy edit)."""
    path: str


def content_type(message: Mapping[str, object]) -> str | None:
    """The content key of ``message``: the first known field, else (a type newer than this
    table) the first key that is ``conversation`` or contains ``Message``, as Baileys'
    ``getContentType`` picks it. Metadata and Evolution's additions (``base64``…) are skipped."""
    for name, value in message.items():
        if value is None or name in METADATA:
            continue
        if name in _KNOWN:
            return name
        if "Message" in name and _CONTENT_KEY.fullmatch(name):
            return name
    return None


def unwrap(message: Mapping[str, object], path: str) -> Content | None:
    """The content of a message, through wrappers (``ephemeralMessage.message`` …); None when
    there is none (metadata only, an empty wrapper such as a view-once placeholder)."""
    via_edit = False
    for _ in range(MAX_WRAPPER_DEPTH):
        found = content_type(message)
        if found is None:
            return None
        value = message[found]
        if found not in WRAPPERS:
            return Content(found, value, via_edit, f"{path}.{found}")
        inner = value.get("message") if isinstance(value, dict) else None
        if not isinstance(inner, dict):
            return None
        via_edit = via_edit or found == "editedMessage"
        path = f"{path}.{found}.message"
        message = inner
    return None


def text_of(content: Content) -> str | None:
    """What a member of the group reads in ``content`` (None for unknown types)."""
    kind = CHAT_LINES.get(content.type)
    return kind.text(content.value) if kind is not None else None


_TIMED: Final = frozenset({"audioMessage", "videoMessage", "ptvMessage"})
_MAX_DURATION: Final = 10_000_000  # seconds (~115 days): longer media durations are nonsense


def announced_duration(message: object) -> int | None:
    """The ``seconds`` an audio or video message announces (any encoding, through wrappers);
    None when absent or absurd. Used before downloading a voice note to transcribe."""
    if not isinstance(message, dict):
        return None
    content = unwrap(message, "message")
    if content is None or content.type not in _TIMED or not isinstance(content.value, dict):
        return None
    seconds = long(content.value.get("seconds"))
    return seconds if seconds is not None and 0 <= seconds <= _MAX_DURATION else None
