"""The few words the backend itself writes around a summary (its heading), in each language a
summary can be written in. The summary's body is the model's, in the same language."""

from __future__ import annotations

from intellizap.summaries.language import DEFAULT_LANGUAGE

DAILY = "daily"
WEEKLY = "weekly"
DIGEST = "digest"

_HEADINGS: dict[str, dict[str, str]] = {
    DAILY: {
        "pt-BR": "📝 *Resumo do grupo*",
        "pt-PT": "📝 *Resumo do grupo*",
        "en": "📝 *Group summary*",
        "es": "📝 *Resumen del grupo*",
        "fr": "📝 *Résumé du groupe*",
        "it": "📝 *Riepilogo del gruppo*",
        "de": "📝 *Gruppenzusammenfassung*",
    },
    WEEKLY: {
        "pt-BR": "🗓️ *Resumo da semana*",
        "pt-PT": "🗓️ *Resumo da semana*",
        "en": "🗓️ *Weekly recap*",
        "es": "🗓️ *Resumen de la semana*",
        "fr": "🗓️ *Récapitulatif de la semaine*",
        "it": "🗓️ *Riepilogo della settimana*",
        "de": "🗓️ *Wochenrückblick*",
    },
    DIGEST: {
        "pt-BR": "☀️ *Seus grupos hoje*",
        "pt-PT": "☀️ *Os seus grupos hoje*",
        "en": "☀️ *Your groups today*",
        "es": "☀️ *Tus grupos hoy*",
        "fr": "☀️ *Vos groupes aujourd'hui*",
        "it": "☀️ *I tuoi gruppi oggi*",
        "de": "☀️ *Deine Gruppen heute*",
    },
}


def heading(kind: str, language: str, *, group_name: str | None = None, period: str = "") -> str:
    """The heading of a ``kind`` message: ``group_name`` is given when the reader is the owner
    (in their private chat, which group it is about must be said), ``period`` when known."""
    words = _HEADINGS[kind]
    text = words.get(language, words[DEFAULT_LANGUAGE])
    if group_name:
        name = " ".join(group_name.split())[:100]
        text += f" — {name}"
    if period:
        text += f" ({period})"
    return text
