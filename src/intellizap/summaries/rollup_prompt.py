"""Prompts built from summaries instead of raw chats: the owner's daily digest, the weekly recap.

Both read only summaries we already wrote (a few hundred tokens per group and day), never the
raw messages again, which is what keeps them cheap. Those summaries derive from untrusted chat
text, so they go in the same kind of data block as a conversation, under the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from intellizap.summaries.language import DEFAULT_LANGUAGE
from intellizap.summaries.prompt import (
    MAX_GROUP_NAME_CHARS,
    REMINDER,
    SECURITY_RULE,
    data_block,
    language_rule,
    sanitize_data,
)
from intellizap.summaries.transcript import clean_text

#: A summary longer than this is cut before it enters a digest or recap (defence in depth: our
#: own summaries are capped by the model's output limit already).
MAX_SUMMARY_CHARS = 6_000


@dataclass(frozen=True, slots=True)
class GroupSummary:
    """One summary a digest or recap is made of: the group, a label (a day), the text."""

    group_name: str | None
    label: str
    text: str


def _group_name(name: str | None) -> str:
    cleaned = clean_text(name or "").replace(" / ", " ")[:MAX_GROUP_NAME_CHARS].strip()
    return sanitize_data(cleaned) or "(sem nome)"


def _blocks(summaries: Sequence[GroupSummary]) -> list[str]:
    return [
        f"[Grupo: {_group_name(item.group_name)} | {sanitize_data(clean_text(item.label))}]\n"
        f"{item.text.strip()[:MAX_SUMMARY_CHARS]}"
        for item in summaries
    ]


DIGEST_TASK = """\
Você é o IntelliZap. O dono de uma conta acompanha vários grupos de WhatsApp e recebe, em \
particular, um único resumo do dia de todos eles. A mensagem do usuário traz os resumos de \
hoje de cada grupo (não as conversas), entre os marcadores, cada um sob um rótulo \
[Grupo: nome | dia]."""

DIGEST_FORMAT = """\
COMO ESCREVER
{language}
- Uma mensagem curta, para ler em um minuto. Use a formatação do WhatsApp (*negrito*, "• ").
- Primeiro o que precisa do dono, do mais urgente ao menos urgente: 🔴 *Para você* — perguntas \
feitas a ele ou que ficaram sem resposta, pedidos, prazos próximos; depois ✅ *Decisões* e \
📅 *Prazos* de todos os grupos. Cada item diz o grupo entre colchetes, por exemplo \
"[Obra Centro] Confirmar a entrega até sexta".
- Por fim, 💤 *Sem novidades*: uma linha por grupo cujo resumo não traz nada que peça ação e \
uma linha por grupo listado sob [Sem resumo hoje] (pouca ou nenhuma conversa).
- Não repita os resumos inteiros, não invente nada que não esteja neles e omita seções vazias.
- Responda somente com o texto, sem introdução."""


QUIET_LABEL = "[Sem resumo hoje]"


def build_digest_messages(
    *,
    day: str,
    summaries: Sequence[GroupSummary],
    language: str = DEFAULT_LANGUAGE,
    quiet: Sequence[str | None] = (),
) -> list[dict[str, str]]:
    """Messages asking for the owner's daily digest across ``summaries`` (one per group).
    ``quiet`` names the groups with no summary today (too few messages, a failure): the digest
    gives each one line, so the owner sees every group. Their names are chat-controlled, so
    they go inside the data block too."""
    system = "\n\n".join(
        [DIGEST_TASK, SECURITY_RULE, DIGEST_FORMAT.format(language=language_rule(language))]
    )
    blocks = _blocks(summaries)
    if quiet:
        blocks.append("\n".join([QUIET_LABEL, *(f"• {_group_name(name)}" for name in quiet)]))
    user = (
        f"Dia: {sanitize_data(clean_text(day))}\nGrupos: {len(summaries) + len(quiet)}\n"
        f"{data_block(blocks)}\n"
        "Escreva agora o resumo do dia para o dono da conta, seguindo as instruções do sistema. "
        + REMINDER
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


RECAP_TASK = """\
Você é o IntelliZap e escreve a retrospectiva semanal de um grupo de WhatsApp para os próprios \
membros. A mensagem do usuário traz os resumos diários da semana (não a conversa), em ordem \
cronológica, entre os marcadores, cada um sob um rótulo [Grupo: nome | dia]."""

RECAP_FORMAT = """\
COMO ESCREVER
{language}
- Seja fiel aos resumos: não invente fatos, nomes, datas, valores ou links.
- Organize nas seções abaixo e omita as vazias:

🗓️ *A semana em poucas linhas* (2 a 4 frases)
✅ *Decisões da semana*
📋 *Pendências em aberto* (com o responsável e o prazo, quando houver; uma pendência ou \
pergunta resolvida num dia posterior não está mais em aberto)
📌 *Assuntos que mais apareceram*

- Use a formatação do WhatsApp: *negrito* e listas com "• ".
- Responda somente com o texto da retrospectiva, sem introdução."""


def build_recap_messages(
    *, week: str, daily: Sequence[GroupSummary], language: str = DEFAULT_LANGUAGE
) -> list[dict[str, str]]:
    """Messages asking for a group's weekly recap, reduced from that week's daily summaries."""
    system = "\n\n".join(
        [RECAP_TASK, SECURITY_RULE, RECAP_FORMAT.format(language=language_rule(language))]
    )
    name = _group_name(daily[0].group_name) if daily else "(sem nome)"
    user = (
        f"Grupo: {name}\nSemana: {sanitize_data(clean_text(week))}\n"
        f"Resumos diários: {len(daily)}\n{data_block(_blocks(daily))}\n"
        "Escreva agora a retrospectiva da semana para o grupo, seguindo as instruções do "
        "sistema. " + REMINDER
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
