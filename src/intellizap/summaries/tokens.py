"""Token counting with the o200k_base encoding (the GPT-4o / GPT-4.1 / GPT-5 family)."""

from __future__ import annotations

import functools
import warnings
from typing import Protocol

ENCODING_NAME = "o200k_base"

# bpe-openai refuses inputs of 1,000,000+ characters or 200,000+ tokens, so long texts are
# counted in slices; a slice of this many characters stays well below both limits.
_SLICE_CHARS = 100_000


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@functools.cache
def load_encoding() -> _Encoding:
    """The encoding, loaded on first use (seconds of CPU: workers call it at start)."""
    # Imported here: importing bpe-openai loads every encoding it ships, through a deprecated
    # importlib.resources call, and only workers and the CLI count tokens.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai  # type: ignore[import-untyped]

        encoding: _Encoding = bpe_openai.get_encoding(ENCODING_NAME)
    return encoding


def _slices(text: str) -> list[str]:
    """Split ``text`` into slices of at most ``_SLICE_CHARS``, preferably after a newline."""
    slices: list[str] = []
    start = 0
    while len(text) - start > _SLICE_CHARS:
        end = start + _SLICE_CHARS
        cut = text.rfind("\n", start + _SLICE_CHARS // 2, end)
        end = cut + 1 if cut != -1 else end
        slices.append(text[start:end])
        start = end
    slices.append(text[start:])
    return slices


def count_tokens(text: str) -> int:
    """Number of o200k_base tokens in ``text``.

    Special-token strings such as ``<|endoftext|>`` are counted as ordinary text (chat content
    may contain them), never rejected.
    """
    if not text:
        return 0
    encoding = load_encoding()
    return sum(len(encoding.encode_ordinary(part)) for part in _slices(text))
