"""Which language a summary is written in.

A group's or account's explicit choice wins; otherwise the chat's own language, detected from
the transcript by counting common function words. Detection is deliberately conservative:
Brazilian Portuguese (the product's audience) unless one other language clearly dominates, so a
mixed or short chat never flips the summary into a language most of the group does not read.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

DEFAULT_LANGUAGE = "pt-BR"

#: Supported codes and how the prompt names them (the prompt itself is in Portuguese).
LANGUAGES: dict[str, str] = {
    "pt-BR": "português do Brasil",
    "pt-PT": "português europeu",
    "en": "inglês",
    "es": "espanhol",
    "fr": "francês",
    "it": "italiano",
    "de": "alemão",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent words that are (nearly) exclusive to one language among those above. Words two of
# them share ("de", "que", "a", "la", "no", "con"…) prove nothing and are left out.
_MARKERS: dict[str, frozenset[str]] = {
    "pt-BR": _words(
        "não você vocês é são está estão muito obrigado obrigada também isso então uma um "
        "para com mas meu minha hoje amanhã ontem gente vai tem aqui ele ela eu já tudo bom "
        "boa dia noite valeu beleza pra tá né agora depois sim ou nós fazer foi vou quem"
    ),
    "es": _words(
        "el los las y es pero muy gracias hola qué usted ustedes hoy mañana ayer yo tengo "
        "también eso entonces una mi mis bueno buenos buenas día noches ahora después "
        "sí nosotros hacer fue voy quién aquí ya"
    ),
    "en": _words(
        "the and is are you to of it that this what we have will thanks thank hi hello with "
        "for but my today tomorrow yesterday all good morning night now after yes or was "
        "going who here they there can just"
    ),
    "fr": _words(
        "le les et est je vous nous pas c'est merci bonjour avec pour mon aujourd'hui "
        "demain hier tout bien bonne soir maintenant après oui ou faire était qui ici ils "
        "elle suis"
    ),
    "it": _words(
        "il gli è non sono grazie ciao anche perché questo questa con per ma mio oggi domani "
        "ieri tutto buono buongiorno sera adesso dopo sì fare chi qui loro io"
    ),
    "de": _words(
        "und ist nicht ich sie das die der mit danke hallo auch für aber mein heute morgen "
        "gestern alles gut guten abend jetzt nach ja oder machen war wer hier wir bin"
    ),
}
# Words in more than one list count for none of them.
_SHARED = {
    word
    for word, n in Counter(word for words in _MARKERS.values() for word in words).items()
    if n > 1
}
_WORD_LANGUAGE = {
    word: language for language, words in _MARKERS.items() for word in words if word not in _SHARED
}

_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

#: Below this many marker words the chat is too short to tell.
MIN_EVIDENCE = 12
#: The winner needs this share of the marker words…
MIN_SHARE = 0.6
#: …and this many times the runner-up's count.
MIN_LEAD = 2.0


def detect_language(texts: Iterable[str]) -> str:
    """The language of ``texts`` (chat messages), or ``DEFAULT_LANGUAGE`` when unsure or mixed."""
    counts: Counter[str] = Counter()
    for text in texts:
        for word in _WORDS.findall(text.lower()):
            language = _WORD_LANGUAGE.get(word)
            if language is not None:
                counts[language] += 1
    total = sum(counts.values())
    if total < MIN_EVIDENCE:
        return DEFAULT_LANGUAGE
    ranked = counts.most_common(2)
    winner, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0
    if top / total < MIN_SHARE or top < MIN_LEAD * runner_up:
        return DEFAULT_LANGUAGE
    return winner


class UnknownLanguage(ValueError):
    """A configured language code we do not support."""


def normalize_language(value: str | None) -> str | None:
    """A configured code (``"pt-br"``, ``"EN"``, ``"en_US"``, ``"es-AR"``…) as a supported code,
    ``None`` for unset or ``"auto"``; raises :class:`UnknownLanguage` naming the choices."""
    if value is None or not value.strip() or value.strip().lower() == "auto":
        return None
    code = value.strip().replace("_", "-")
    for known in LANGUAGES:
        if code.lower() == known.lower():
            return known
    base = code.split("-", 1)[0].lower()
    if base == "pt":
        return "pt-PT" if code.lower().endswith("-pt") else "pt-BR"
    if base in LANGUAGES:
        return base
    raise UnknownLanguage(
        f"unsupported summary language {value!r}: use one of {', '.join(LANGUAGES)} or 'auto'"
    )


def choose_language(group: str | None, account: str | None, chat: Iterable[str]) -> str:
    """The group's setting, else the account's, else the chat's detected language.

    An unsupported stored code (the frontend writes these columns) falls through to the next
    choice rather than failing the summary.
    """
    for configured in (group, account):
        try:
            code = normalize_language(configured)
        except UnknownLanguage:
            continue
        if code is not None:
            return code
    return detect_language(chat)
