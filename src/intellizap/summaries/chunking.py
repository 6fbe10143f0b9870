"""Split a long transcript into consecutive chunks that each fit a token budget (map-reduce)."""

from __future__ import annotations

from collections.abc import Sequence

from intellizap.summaries.tokens import count_tokens

_SEPARATOR = "\n"


def chunk_lines(lines: Sequence[str], budget_tokens: int) -> list[list[str]]:
    """Greedily pack ``lines``, in order, into chunks of at most ``budget_tokens`` tokens.

    A chunk's size is ``count_tokens("\\n".join(chunk))``. Every line lands in exactly one chunk
    and the concatenation of the chunks is ``lines``; a single line over the budget gets a chunk
    of its own (the only case where a chunk exceeds the budget).

    Each line is tokenised once to estimate a chunk's size (sum of the lines plus one token per
    separator). BPE is not exactly additive, so every chunk is then measured as a whole and
    shrunk or grown until the exact count fits: the budget holds for any input.
    """
    if budget_tokens < 1:
        raise ValueError("budget_tokens must be positive")
    sizes = [count_tokens(line) for line in lines]
    separator = count_tokens(_SEPARATOR)
    chunks: list[list[str]] = []
    start, total = 0, len(lines)
    while start < total:
        # Estimate: extend while the running sum fits (always at least one line).
        end, estimate = start + 1, sizes[start]
        while end < total and estimate + separator + sizes[end] <= budget_tokens:
            estimate += separator + sizes[end]
            end += 1
        end = _exact_end(lines, start, end, budget_tokens)
        chunks.append(list(lines[start:end]))
        start = end
    return chunks


def _exact_end(lines: Sequence[str], start: int, end: int, budget: int) -> int:
    """The end of the chunk starting at ``start``, corrected from the estimate ``end``.

    Only ends whose joined text was measured within budget (or single lines) are ever returned,
    so the result is correct even where token counts are not monotonic in the number of lines.
    """

    def fits(stop: int) -> bool:
        return stop - start == 1 or count_tokens(_SEPARATOR.join(lines[start:stop])) <= budget

    if not fits(end):
        # Over budget: binary search between a single line (fits) and ``end`` (does not).
        low, high = start + 1, end
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        return low
    # Within budget: the estimate may be pessimistic, so gallop forward while lines still fit.
    step = 1
    while end < len(lines):
        candidate = min(end + step, len(lines))
        if fits(candidate):
            end, step = candidate, step * 2
        elif step == 1:
            break
        else:
            step = 1
    return end
