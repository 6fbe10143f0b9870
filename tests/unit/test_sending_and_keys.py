"""Pure rules: splitting long texts for WhatsApp, which OpenAI key a tenant uses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from intellizap.evolution.text_parts import split_text
from intellizap.llm import (
    ApiKey,
    KeyOwner,
    NoApiKey,
    choose_key,
)

# --- split_text ----------------------------------------------------------------------------------


def words_of(parts: list[str]) -> list[str]:
    return [word for part in parts for word in part.split()]


def assert_valid_split(text: str, parts: list[str], limit: int) -> None:
    assert all(parts), parts
    assert all(len(part) <= limit for part in parts), [len(p) for p in parts]
    assert all(part == part.strip() for part in parts)
    assert words_of(parts) == text.split()


def test_short_text_is_one_part() -> None:
    assert split_text("Bom dia, pessoal!", 100) == ["Bom dia, pessoal!"]


def test_text_exactly_at_the_limit_is_one_part() -> None:
    text = "a" * 50
    assert split_text(text, 50) == [text]


def test_short_text_is_stripped() -> None:
    assert split_text("\n\n  Olá  \n", 100) == ["Olá"]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\n", " \n \t "])
def test_empty_text_has_no_parts(text: str) -> None:
    assert split_text(text, 100) == []


def test_paragraphs_that_fit_together_stay_together() -> None:
    first, second, third = "a" * 30, "b" * 30, "c" * 30
    text = f"{first}\n\n{second}\n\n{third}"

    assert split_text(text, 70) == [f"{first}\n\n{second}", third]


def test_split_is_at_paragraphs_first() -> None:
    # Each paragraph has lines and words, but fits: only the blank lines are cut.
    one = "Resumo do dia:\nvendas subiram dez por cento"
    two = "Pendências:\nligar para o cliente amanhã cedo"
    three = "Próxima reunião:\nquinta às dez horas"
    text = f"{one}\n\n{two}\n\n{three}"
    limit = max(len(one), len(two), len(three)) + 5

    parts = split_text(text, limit)

    assert parts == [one, two, three]
    assert_valid_split(text, parts, limit)


def test_a_paragraph_too_long_is_split_at_lines() -> None:
    lines = [f"linha número {i} com algum texto" for i in range(6)]
    paragraph = "\n".join(lines)
    text = f"curto\n\n{paragraph}\n\nfim"
    limit = len(lines[0]) * 2 + 1  # two lines per part

    parts = split_text(text, limit)

    assert parts == [
        "curto",
        f"{lines[0]}\n{lines[1]}",
        f"{lines[2]}\n{lines[3]}",
        f"{lines[4]}\n{lines[5]}",
        "fim",
    ]
    assert_valid_split(text, parts, limit)


def test_a_line_too_long_is_split_at_words() -> None:
    words = ["palavra"] * 20
    text = " ".join(words)

    parts = split_text(text, 30)

    assert all("\n" not in part for part in parts)
    assert parts[0] == "palavra palavra palavra"  # 23 chars; one more word would be 31
    assert_valid_split(text, parts, 30)


def test_a_single_huge_word_is_cut_hard() -> None:
    huge = "x" * 95
    text = f"antes\n\n{huge}\n\ndepois"

    parts = split_text(text, 20)

    assert parts == ["antes", *(["x" * 20] * 4), "x" * 15, "depois"]
    assert "".join(parts[1:-1]) == huge


def test_a_huge_url_between_words() -> None:
    url = "https://example.com/" + "a" * 60
    text = f"veja {url} depois"

    parts = split_text(text, 25)

    assert all(0 < len(part) <= 25 for part in parts)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")
    assert parts[0] == "veja"
    assert parts[-1].endswith("depois")


def test_every_part_is_within_the_limit_and_no_word_is_lost() -> None:
    paragraphs = [
        " ".join(f"p{p}w{w}" for w in range(p * 7 + 3))
        + "\n"
        + " ".join(f"p{p}l{w}" for w in range(11))
        for p in range(8)
    ]
    text = "\n\n".join(paragraphs)
    for limit in (20, 33, 64, 100, 257, 1000):
        parts = split_text(text, limit)
        assert_valid_split(text, parts, limit)
        if limit >= len(text):
            assert parts == [text]


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzçãéõ0123456789.,!?", min_size=1, max_size=15)
LINE = st.lists(WORD, min_size=1, max_size=12).map(" ".join)
PARAGRAPH = st.lists(LINE, min_size=1, max_size=5).map("\n".join)
TEXT = st.lists(PARAGRAPH, min_size=0, max_size=8).map("\n\n".join)

HUGE_WORD = st.text(alphabet="abcxyz-/:", min_size=1, max_size=70)
MESSY_LINE = st.lists(HUGE_WORD, min_size=1, max_size=8).map(" ".join)
MESSY_TEXT = st.lists(
    st.lists(MESSY_LINE, min_size=1, max_size=4).map("\n".join), min_size=1, max_size=5
).map("\n\n".join)


@settings(max_examples=300, deadline=None, database=None)
@given(text=TEXT, limit=st.integers(min_value=20, max_value=500))
def test_split_property_words_preserved_in_order(text: str, limit: int) -> None:
    parts = split_text(text, limit)

    assert_valid_split(text, parts, limit)
    assert (parts == []) == (text.strip() == "")
    if len(text.strip()) <= limit:
        assert parts == ([text.strip()] if text.strip() else [])


@settings(max_examples=300, deadline=None, database=None)
@given(text=MESSY_TEXT, limit=st.integers(min_value=20, max_value=500))
def test_split_property_with_words_longer_than_the_limit(text: str, limit: int) -> None:
    parts = split_text(text, limit)

    assert all(parts)
    assert all(len(part) <= limit for part in parts)
    # Words may be cut hard, but no character is lost or reordered.
    assert "".join("".join(part.split()) for part in parts) == "".join(text.split())
    # Words that fit are never cut.
    fitting = [word for word in text.split() if len(word) <= limit]
    assert all(word in words_of(parts) for word in fitting)


# --- choose_key ----------------------------------------------------------------------------------

TENANT_KEY = "sk-tenant-own-0123456789abcdef"
PLATFORM_KEY = "sk-platform-fedcba9876543210"


def test_tenant_key_wins() -> None:
    key = choose_key(TENANT_KEY, SecretStr(PLATFORM_KEY))

    assert key == ApiKey(TENANT_KEY, KeyOwner.OWN)
    assert key.owner == "propria"


def test_tenant_key_is_stripped() -> None:
    key = choose_key(f"  {TENANT_KEY}\n", None)

    assert (key.secret, key.owner) == (TENANT_KEY, KeyOwner.OWN)


@pytest.mark.parametrize("tenant_key", [None, "", "   ", "\n\t"])
def test_blank_tenant_key_uses_the_platform_key(tenant_key: str | None) -> None:
    key = choose_key(tenant_key, SecretStr(PLATFORM_KEY))

    assert (key.secret, key.owner) == (PLATFORM_KEY, KeyOwner.PLATFORM)
    assert key.owner == "plataforma"


@pytest.mark.parametrize(
    ("tenant_key", "platform_key"),
    [(None, None), ("", None), ("  ", SecretStr("")), (None, SecretStr(""))],
)
def test_no_key_at_all(tenant_key: str | None, platform_key: SecretStr | None) -> None:
    with pytest.raises(NoApiKey) as caught:
        choose_key(tenant_key, platform_key)

    assert caught.value.transient is False


@pytest.mark.parametrize(("tenant_key", "secret"), [(TENANT_KEY, TENANT_KEY), (None, PLATFORM_KEY)])
def test_key_repr_hides_the_secret(tenant_key: str | None, secret: str) -> None:
    key = choose_key(tenant_key, SecretStr(PLATFORM_KEY))

    assert secret not in repr(key)
    assert secret not in str(key)
    assert secret not in f"{key!r} {key}"
    assert key.owner.value in repr(key)
