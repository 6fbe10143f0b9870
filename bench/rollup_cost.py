"""Prompt-token cost of the owner's digest and the weekly recap against the daily summaries'
prompts they are built from. No network, no database: the real prompt builders and the real
token counter (``summaries.tokens.count_tokens``) over SYNTHETIC, deterministic data.

    uv run python bench/rollup_cost.py [--messages 150] [--summary-words 180] [--seed 13]

- A daily prompt: ``build_summary_messages`` (what ``service.py`` sends) over a synthetic group
  chat of ``--messages`` messages (pt-BR sentences of 4–25 words from a fixed vocabulary, five
  authors, one message every few minutes), rendered by the real ``render_transcript``.
- A daily summary: a synthetic text of about ``--summary-words`` words shaped like a real
  one (sections and "• " items), i.e. what the model returns and the rollups read.
- A digest of N groups: ``build_digest_messages`` over N such summaries (plus one quiet group).
- A recap: ``build_recap_messages`` over 7 such summaries (a week of one group).

Only prompt (input) tokens are counted; each rollup adds one answer of at most
``SUMMARY_MAX_OUTPUT_TOKENS``, like each daily summary.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from intellizap.summaries.prompt import build_summary_messages
from intellizap.summaries.rollup_prompt import (
    GroupSummary,
    build_digest_messages,
    build_recap_messages,
)
from intellizap.summaries.tokens import count_tokens
from intellizap.summaries.transcript import ChatLine, render_transcript

VOCABULARY = (
    "pedido entrega cliente amanhã hoje reunião orçamento obra material prazo pagamento nota "
    "fiscal boleto confirmar enviar revisar aprovar cancelar remarcar sexta segunda cedo tarde "
    "valor desconto frete estoque fornecedor contrato proposta equipe turno escala plantão "
    "projeto relatório planilha ligação mensagem grupo foto vídeo áudio documento endereço "
    "horário combinado certo beleza obrigado por favor alguém pode verificar isso aquilo já "
    "ainda depois antes agora logo quando onde quem qual quanto porque então mas também"
)
WORDS = tuple(VOCABULARY.split())
AUTHORS = ("Ana", "Bruno", "Carla", "Diego", "Elisa")
ZONE = ZoneInfo("America/Sao_Paulo")


def prompt_tokens(messages: list[dict[str, str]]) -> int:
    return sum(count_tokens(message["content"]) for message in messages)


def sentence(rng: random.Random, low: int, high: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize()


def synthetic_chat(rng: random.Random, messages: int) -> list[str]:
    start = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    chat, at = [], start
    for n in range(messages):
        at += timedelta(seconds=rng.randint(30, 600))
        author = AUTHORS[rng.randrange(len(AUTHORS))]
        text = sentence(rng, 4, 25) + rng.choice(("", "?", "!", "."))
        chat.append(ChatLine(at, author, f"55119{n % 5:08d}", "texto", text))
    return render_transcript(chat, ZONE)


def synthetic_summary(rng: random.Random, words: int) -> str:
    sections = ("📌 *Principais assuntos*", "✅ *Decisões*", "📋 *Pendências*", "📅 *Prazos*")
    per_item, lines, written = 14, [], 0
    for title in sections:
        lines.append(title)
        for _ in range(max(1, words // (len(sections) * per_item))):
            item = sentence(rng, per_item - 4, per_item + 4)
            lines.append(f"• {item}")
            written += len(item.split())
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=150, help="messages per group and day")
    parser.add_argument("--summary-words", type=int, default=180, help="words per daily summary")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    daily_prompt = prompt_tokens(
        build_summary_messages(
            group_name="Grupo 1",
            period="25/11 08:00 a 25/11 20:00",
            lines=synthetic_chat(rng, args.messages),
        )
    )
    summaries = [synthetic_summary(rng, args.summary_words) for _ in range(50)]
    summary_tokens = sum(count_tokens(s) for s in summaries) / len(summaries)
    print(f"SYNTHETIC data (deterministic, seed {args.seed}): not real chats, not real summaries")
    print(f"daily prompt, {args.messages} messages:        {daily_prompt:>7,} tokens")
    print(f"one daily summary (~{args.summary_words} words):    {summary_tokens:>7,.0f} tokens")
    print()
    print("ratio: the rollup's prompt / the prompts of the daily summaries it is built from")
    print(f"{'rollup':<26}{'its prompt':>12}{'daily prompts':>18}{'ratio':>8}")
    for groups in (1, 5, 10, 20, 50):
        digest = prompt_tokens(
            build_digest_messages(
                day="25/11/2026",
                summaries=[
                    GroupSummary(f"Grupo {n}", "25/11", summaries[n % len(summaries)])
                    for n in range(groups)
                ],
                quiet=["Grupo sem conversa"],
            )
        )
        base = groups * daily_prompt
        print(f"{f'digest of {groups} groups':<26}{digest:>12,}{base:>18,}{digest / base:>8.1%}")
    week = [GroupSummary("Grupo 1", f"{day}/11", summaries[day % 7]) for day in range(19, 26)]
    recap = prompt_tokens(build_recap_messages(week="19/11 a 25/11", daily=week))
    base = 7 * daily_prompt
    print(f"{'recap of 7 dailies':<26}{recap:>12,}{base:>18,}{recap / base:>8.1%}")


if __name__ == "__main__":
    main()
