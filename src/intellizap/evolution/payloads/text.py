"""The text a member of the group reads in each kind of content (docs/message-types.md).

Each function takes the content object (``message[<type>]``) and returns the readable text, or
None. Parts are joined one per line; options, rows and buttons get a ``•``. Lists are read up to
:data:`MAX_ITEMS` entries: the text is capped anyway, and a hostile payload must stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import orjson

from intellizap.evolution.payloads.values import joined, long, optional_text

MAX_ITEMS: Final = 100
_MAX_PARAMS_JSON: Final = 4096
_MAX_CARDS_DEPTH: Final = 2


def _get(value: object, *path: str) -> object:
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _text(value: object, *path: str) -> str | None:
    return optional_text(_get(value, *path))


def _items(value: object, name: str) -> list[object]:
    items = _get(value, name)
    return items[:MAX_ITEMS] if isinstance(items, list) else []


def _bullets(parts: Sequence[str | None]) -> list[str | None]:
    return [f"• {part}" for part in parts if part]


def plain(value: object) -> str | None:
    """``conversation``: the value is the text itself."""
    return optional_text(value)


def text_field(value: object) -> str | None:
    """``extendedTextMessage``: ``text``."""
    return _text(value, "text")


def caption(value: object) -> str | None:
    return _text(value, "caption")


def document(value: object) -> str | None:
    """The file name (else the title), then the caption."""
    name = _text(value, "fileName") or _text(value, "title")
    text = _text(value, "caption")
    return joined([name, text if text != name else None])


def location(value: object) -> str | None:
    return joined([_text(value, "name"), _text(value, "address"), _text(value, "comment")], " — ")


def contact(value: object) -> str | None:
    return _text(value, "displayName")


def contacts(value: object) -> str | None:
    """Each contact's name; the card's own ``displayName`` ("2 contatos") only without them."""
    names = [_text(item, "displayName") for item in _items(value, "contacts")]
    return joined(names, ", ") or _text(value, "displayName")


def poll(value: object) -> str | None:
    options = [_text(item, "optionName") for item in _items(value, "options")]
    return joined([_text(value, "name"), *_bullets(options)])


def poll_results(value: object) -> str | None:
    votes = []
    for item in _items(value, "pollVotes"):
        option = _text(item, "optionName")
        if option:
            count = long(_get(item, "optionVoteCount"))
            votes.append(f"{option}: {count or 0}")
    return joined([_text(value, "name"), *_bullets(votes)])


def event(value: object) -> str | None:
    place = _text(value, "location", "name") or _text(value, "location", "address")
    return joined([_text(value, "name"), _text(value, "description"), place])


def title(value: object) -> str | None:
    return _text(value, "title")


def sticker_pack(value: object) -> str | None:
    return _text(value, "name")


def group_invite(value: object) -> str | None:
    return joined([_text(value, "groupName"), _text(value, "caption")])


def channel_invite(value: object) -> str | None:
    return joined([_text(value, "newsletterName"), _text(value, "caption")])


def buttons(value: object) -> str | None:
    """Header (text, or a media header's caption), text, footer, then each button."""
    header = _text(value, "text")
    for media in ("imageMessage", "videoMessage", "documentMessage"):
        header = header or _text(value, media, "caption")
    labels = [_text(item, "buttonText", "displayText") for item in _items(value, "buttons")]
    return joined(
        [header, _text(value, "contentText"), _text(value, "footerText"), *_bullets(labels)]
    )


def list_message(value: object) -> str | None:
    rows = [
        _text(row, "title")
        for section in _items(value, "sections")
        for row in _items(section, "rows")
    ]
    return joined(
        [
            _text(value, "title"),
            _text(value, "description"),
            _text(value, "footerText"),
            *_bullets(rows[:MAX_ITEMS]),
        ]
    )


def selected_row(value: object) -> str | None:
    """``listResponseMessage``: the chosen row's title and description."""
    return joined([_text(value, "title"), _text(value, "description")])


def selected_button(value: object) -> str | None:
    """``buttonsResponseMessage`` / ``templateButtonReplyMessage``: the button's text."""
    return _text(value, "selectedDisplayText")


def template(value: object) -> str | None:
    """``templateMessage``: its hydrated (rendered) template, or the interactive one."""
    for name in ("hydratedTemplate", "hydratedFourRowTemplate"):
        hydrated = _get(value, name)
        if isinstance(hydrated, dict):
            return _hydrated(hydrated)
    nested = _get(value, "interactiveMessageTemplate")
    return interactive(nested) if isinstance(nested, dict) else None


def _hydrated(value: object) -> str | None:
    labels = [
        _text(item, kind, "displayText")
        for item in _items(value, "hydratedButtons")
        for kind in ("quickReplyButton", "urlButton", "callButton")
    ]
    header = _text(value, "hydratedTitleText")
    for media in ("imageMessage", "videoMessage", "documentMessage"):
        header = header or _text(value, media, "caption")
    return joined(
        [
            header,
            _text(value, "hydratedContentText"),
            _text(value, "hydratedFooterText"),
            *_bullets(labels),
        ]
    )


def structured(value: object) -> str | None:
    """``highlyStructuredMessage``: the rendered template it carries, if any."""
    hydrated = _get(value, "hydratedHsm")
    return template(hydrated) if isinstance(hydrated, dict) else None


def interactive(value: object, depth: int = 0) -> str | None:
    """Header, body, footer, native-flow buttons, and each carousel card."""
    labels = [_button_label(item) for item in _items(_get(value, "nativeFlowMessage"), "buttons")]
    cards = (
        [interactive(card, depth + 1) for card in _items(_get(value, "carouselMessage"), "cards")]
        if depth < _MAX_CARDS_DEPTH
        else []
    )
    return joined(
        [
            _text(value, "header", "title"),
            _text(value, "header", "subtitle"),
            _text(value, "body", "text"),
            _text(value, "footer", "text"),
            *_bullets(labels),
            *cards,
        ]
    )


def _button_label(button: object) -> str | None:
    """A native-flow button's ``display_text``, from its JSON parameters."""
    params = _get(button, "buttonParamsJson")
    if not isinstance(params, str) or len(params) > _MAX_PARAMS_JSON:
        return None
    try:
        decoded = orjson.loads(params)
    except orjson.JSONDecodeError:
        return None
    return _text(decoded, "display_text")


def interactive_response(value: object) -> str | None:
    return _text(value, "body", "text")


def product(value: object) -> str | None:
    return joined(
        [
            _text(value, "product", "title"),
            _text(value, "product", "description"),
            _text(value, "body"),
            _text(value, "footer"),
        ]
    )


def order(value: object) -> str | None:
    return joined([_text(value, "orderTitle"), _text(value, "message")])


def _note(value: object) -> str | None:
    """A payment's ``noteMessage``: a message holding a text."""
    note = _get(value, "noteMessage")
    return _text(note, "conversation") or _text(note, "extendedTextMessage", "text")


def payment(value: object) -> str | None:
    return _note(value)


def payment_request(value: object) -> str | None:
    """The amount (``BRL 25,00``) and the note."""
    amount = _amount(_get(value, "amount"))
    if amount is None:
        thousandths = long(_get(value, "amount1000"))
        currency = optional_text(_get(value, "currencyCodeIso4217"))
        if thousandths is not None and currency:
            amount = _money(currency, thousandths, 1000)
    return joined([amount, _note(value)])


def _amount(money: object) -> str | None:
    value, offset = long(_get(money, "value")), long(_get(money, "offset"))
    currency = optional_text(_get(money, "currencyCode"))
    if value is None or not currency:
        return None
    return _money(currency, value, offset if offset and offset > 0 else 1)


def _money(currency: str, value: int, offset: int) -> str:
    whole, cents = divmod(abs(value) * 100 // offset, 100)
    sign = "-" if value < 0 else ""
    return f"{currency[:8]} {sign}{whole:,}".replace(",", ".") + f",{cents:02d}"


def invoice(value: object) -> str | None:
    return _text(value, "note")


def rich_response(value: object) -> str | None:
    """Meta AI's answer: the text of each part."""
    return joined([_text(part, "messageText") for part in _items(value, "submessages")])
