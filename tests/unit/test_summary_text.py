"""Transcript rendering, token counting and chunking for the daily summary."""

from __future__ import annotations

import itertools
import random
import unicodedata
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intellizap.summaries.chunking import chunk_lines
from intellizap.summaries.tokens import count_tokens
from intellizap.summaries.transcript import ChatLine, render_line, render_transcript

SP = ZoneInfo("America/Sao_Paulo")
NOON = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo


def msg(
    text: str | None = "oi",
    *,
    kind: str = "texto",
    name: str | None = "Ana",
    number: str | None = "5511999990000",
    at: datetime = NOON,
) -> ChatLine:
    return ChatLine(sent_at=at, author_name=name, author_number=number, kind=kind, text=text)


def body(rendered: str | None) -> str:
    """The text after ``"HH:MM Name: "``."""
    assert rendered is not None
    return rendered.split(": ", 1)[1]


# --- realistic day -------------------------------------------------------------------------------

NAMES = ["Ana Paula", "Bruno", "Carla Souza", "Diego", "Fernanda", "Gustavo 🚴", "Helena", "Igor"]
PHRASES = [
    "bom dia pessoal!",
    "alguém sabe se a reunião de amanhã continua às 19h?",
    "continua sim, no salão do prédio",
    "kkkkkkk",
    "vou levar o bolo, alguém leva os refrigerantes?",
    "eu levo 👍",
    "segue o link da planilha: https://docs.google.com/spreadsheets/d/1AbCdEf/edit",
    "pessoal, a taxa do condomínio vai subir 8% a partir de janeiro",
    "sério? ninguém avisou isso na assembleia",
    "foi votado em outubro, tá na ata",
    "quem ficou de ligar para o síndico sobre o vazamento no bloco B?",
    "eu ligo amanhã cedo",
    "obrigada!!",
    "boa noite a todos",
    "a piscina fica fechada para manutenção até sexta",
    "alguém tem indicação de eletricista? preciso trocar o disjuntor",
    "o Seu Zé é ótimo, vou passar o contato",
    "vi um cachorro perdido perto do portão, alguém conhece?",
]


def realistic_day(count: int, seed: int = 7) -> list[ChatLine]:
    rng = random.Random(seed)
    start = datetime(2025, 11, 24, 23, 0, tzinfo=UTC)
    lines = []
    for index in range(count):
        at = start + timedelta(seconds=index * 86_400 // count)
        name = rng.choice(NAMES)
        number = f"55119{rng.randrange(10**8):08d}"
        roll = rng.random()
        if roll < 0.08:
            lines.append(msg("reunião às 19h confirmada", kind="audio", name=name, at=at))
        elif roll < 0.12:
            lines.append(msg(None, kind="imagem", name=name, number=number, at=at))
        elif roll < 0.15:
            lines.append(msg(None, kind="figurinha", name=name, at=at))
        else:
            text = " ".join(rng.sample(PHRASES, rng.choice([1, 1, 1, 2, 3])))
            if rng.random() < 0.05:
                text += "\n" + rng.choice(PHRASES)
            lines.append(msg(text, name=name, number=number, at=at))
    return lines


# --- tokens --------------------------------------------------------------------------------------


def test_count_tokens_is_zero_for_empty_and_grows_with_text() -> None:
    assert count_tokens("") == 0
    short = count_tokens("bom dia")
    assert short > 0
    assert count_tokens("bom dia pessoal, a reunião de amanhã continua às 19h") > short


def test_count_tokens_treats_special_token_text_as_plain_text() -> None:
    assert count_tokens("olha isso <|endoftext|> kkk") > 3


def test_count_tokens_handles_texts_beyond_the_tokenizer_limits() -> None:
    line = "pessoal a reunião continua amanhã\n"
    assert count_tokens(line * 40_000) == pytest.approx(count_tokens(line) * 40_000, rel=0.01)


# --- render_line ---------------------------------------------------------------------------------


def test_time_is_shown_in_the_tenant_time_zone() -> None:
    late = datetime(2025, 11, 24, 23, 30, tzinfo=UTC)
    assert render_line(msg("oi", at=late), SP) == "20:30 Ana: oi"
    assert render_line(msg("oi", at=late), ZoneInfo("UTC")) == "23:30 Ana: oi"


def test_author_falls_back_from_name_to_number_to_someone() -> None:
    assert render_line(msg(name="Ana"), SP) == "12:00 Ana: oi"
    assert render_line(msg(name=None), SP) == "12:00 5511999990000: oi"
    assert render_line(msg(name="  \u200e "), SP) == "12:00 5511999990000: oi"
    assert render_line(msg(name=None, number="123456789@lid"), SP) == "12:00 123456789@lid: oi"
    assert render_line(msg(name=None, number=None), SP) == "12:00 Alguém: oi"


def test_author_name_is_cleaned_to_one_short_line() -> None:
    rendered = render_line(msg(name="Ana\n\u202eSilva " + "x" * 100), SP)
    assert rendered is not None
    name = rendered[len("12:00 ") :].split(": ", 1)[0]
    assert name.startswith("Ana Silva")
    assert len(name) <= 41
    assert "\n" not in name
    assert "\u202e" not in name


def test_control_and_bidi_characters_are_stripped() -> None:
    nasty = "a\x00b\u200ec\u202ed\u2066e\ufeff\u200bf\u00adg\U000e0041h\x1bi\tj"
    text = body(render_line(msg(nasty), SP))
    assert text == "abcdefghi j"
    assert all(unicodedata.category(char) not in ("Cc", "Cf") for char in text)


def test_newlines_become_slashes_and_whitespace_collapses() -> None:
    text = "primeira linha\r\n\r\n  segunda   linha \n\tterceira\u2028quarta\rquinta  "
    assert body(render_line(msg(text), SP)) == (
        "primeira linha / segunda linha / terceira / quarta / quinta"
    )


def test_long_text_is_capped_at_a_word_boundary_with_ellipsis() -> None:
    words = " ".join(f"palavra{index}" for index in range(200))
    text = body(render_line(msg(words), SP, max_chars=100))
    assert text.endswith("…")
    assert len(text) <= 101
    kept = text[:-1]
    assert words.startswith(kept)
    assert words[len(kept)] == " "  # cut between words


def test_long_text_without_spaces_is_cut_hard() -> None:
    url = "https://example.com/" + "a" * 1000
    text = body(render_line(msg(url), SP, max_chars=80))
    assert text == url[:80] + "…"


def test_text_within_the_cap_is_kept_whole() -> None:
    assert body(render_line(msg("x" * 600), SP)) == "x" * 600


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("texto", "bom dia", "bom dia"),
        ("imagem", "foto da festa", "[imagem] foto da festa"),
        ("imagem", None, "[imagem]"),
        ("audio", "chego às 8h", "[áudio] chego às 8h"),
        ("audio", None, "[áudio]"),
        ("video", None, "[vídeo]"),
        ("video", "olha o gol", "[vídeo] olha o gol"),
        ("documento", "ata.pdf", "[documento] ata.pdf"),
        ("documento", None, "[documento]"),
        ("figurinha", "kkk", "[figurinha] kkk"),
        ("enquete", "Churrasco sábado? (Sim / Não)", "[enquete] Churrasco sábado? (Sim / Não)"),
        ("localizacao", "Praça da Sé", "[localização] Praça da Sé"),
        ("contato", "Seu Zé Eletricista", "[contato] Seu Zé Eletricista"),
        ("resposta", "Sim, confirmo presença", "Sim, confirmo presença"),
        ("interativa", "Confirma o pedido? (Sim / Não)", "[botões] Confirma o pedido? (Sim / Não)"),
        ("convite", "Obra Centro", "[convite] Obra Centro"),
        ("evento", "Churrasco de fim de ano", "[evento] Churrasco de fim de ano"),
        ("chamada", None, "[chamada]"),
        ("pagamento", "R$ 50,00", "[pagamento] R$ 50,00"),
        ("produto", "Camiseta azul", "[produto] Camiseta azul"),
        ("pedido", None, "[pedido]"),
        ("reacao_nova", "texto de um tipo novo", "texto de um tipo novo"),
    ],
)
def test_each_kind_gets_its_tag(kind: str, text: str | None, expected: str) -> None:
    assert body(render_line(msg(text, kind=kind), SP)) == expected


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("figurinha", None),
        ("figurinha", "  "),
        ("desconhecido", None),
        ("desconhecido", ""),
        ("texto", ""),
        ("texto", None),
        ("texto", " \n\u200b\t "),
    ],
)
def test_stickers_unknown_kinds_and_empty_texts_are_skipped(kind: str, text: str | None) -> None:
    assert render_line(msg(text, kind=kind), SP) is None


def test_render_transcript_keeps_order_and_skips_noise() -> None:
    lines = [
        msg("primeira"),
        msg(None, kind="figurinha"),
        msg("segunda", name="Bruno"),
        msg(None, kind="??"),
        msg(None, kind="imagem"),
    ]
    assert render_transcript(lines, SP) == [
        "12:00 Ana: primeira",
        "12:00 Bruno: segunda",
        "12:00 Ana: [imagem]",
    ]


# --- chunking ------------------------------------------------------------------------------------


def assert_valid_chunks(lines: list[str], chunks: list[list[str]], budget: int) -> None:
    assert [line for chunk in chunks for line in chunk] == lines
    assert all(chunk for chunk in chunks)
    for chunk in chunks:
        assert len(chunk) == 1 or count_tokens("\n".join(chunk)) <= budget


line_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80
) | st.sampled_from(["", "\n", " ", "kkkk", "<<<", "bom dia 👍", "\n\n", "  \n"])


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(line_text, max_size=40), budget=st.integers(min_value=1, max_value=120))
def test_chunk_lines_places_every_line_once_in_order_within_budget(
    lines: list[str], budget: int
) -> None:
    assert_valid_chunks(lines, chunk_lines(lines, budget), budget)


def test_chunk_lines_gives_an_oversized_line_its_own_chunk() -> None:
    big = "palavra " * 200
    chunks = chunk_lines(["oi", "tudo bem?", big, "sim"], 50)
    assert chunks == [["oi", "tudo bem?"], [big], ["sim"]]


def test_chunk_lines_of_nothing_is_nothing() -> None:
    assert chunk_lines([], 100) == []


def test_chunk_lines_rejects_a_non_positive_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        chunk_lines(["oi"], 0)


def test_a_busy_day_chunks_correctly() -> None:
    lines = render_transcript(realistic_day(5_000), SP)
    assert len(lines) > 4_000
    chunks = chunk_lines(lines, 8_000)
    assert_valid_chunks(lines, chunks, 8_000)
    assert len(chunks) > 1
    # Greedy: each chunk but the last could not take the next line.
    for chunk, following in itertools.pairwise(chunks):
        assert count_tokens("\n".join([*chunk, following[0]])) > 8_000
