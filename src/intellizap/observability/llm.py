"""Metrics of LLM and Whisper calls, by model and by whose key paid — never by tenant (one
series per tenant would not scale, and the usage per tenant is in ``uso_tokens``).

Wrap each provider call::

    with observe_llm_call(kind="resumo", model=model, key_owner=key.owner.value) as call:
        completion = await client.chat.completions.create(...)
        call.tokens(completion.input_tokens, completion.output_tokens)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

LLM_CALLS = Counter(
    "intellizap_llm_calls_total",
    "LLM and Whisper calls by kind (resumo, transcricao), model, key owner and outcome",
    ["kind", "model", "key_owner", "outcome"],
)
LLM_TOKENS = Counter(
    "intellizap_llm_tokens_total",
    "Tokens reported by the provider, by kind, model, key owner and direction (input, output)",
    ["kind", "model", "key_owner", "direction"],
)
LLM_SECONDS = Histogram(
    "intellizap_llm_call_duration_seconds",
    "Duration of LLM and Whisper calls",
    ["kind", "model", "key_owner"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)


@dataclass(slots=True)
class _Call:
    kind: str
    model: str
    key_owner: str
    outcome: str = "ok"

    def tokens(self, input_tokens: int, output_tokens: int) -> None:
        labels = (self.kind, self.model, self.key_owner)
        LLM_TOKENS.labels(*labels, "input").inc(max(input_tokens, 0))
        LLM_TOKENS.labels(*labels, "output").inc(max(output_tokens, 0))


def outcome_of(exc: BaseException) -> str:
    """``rate_limited``, ``invalid_key``… from the exception's class name, without importing
    :mod:`intellizap.llm` (which imports this module)."""
    name = type(exc).__name__
    return {
        "RateLimited": "rate_limited",
        "InvalidApiKey": "invalid_key",
        "NoApiKey": "no_key",
        "LlmUnavailable": "unavailable",
        "LlmRejected": "rejected",
    }.get(name, "error")


@contextmanager
def observe_llm_call(*, kind: str, model: str, key_owner: str) -> Iterator[_Call]:
    """Time one provider call and count it by outcome (an exception is counted and re-raised)."""
    call = _Call(kind=kind, model=model, key_owner=key_owner)
    started = time.perf_counter()
    try:
        yield call
    except BaseException as exc:
        call.outcome = outcome_of(exc)
        raise
    finally:
        LLM_SECONDS.labels(kind, model, key_owner).observe(time.perf_counter() - started)
        LLM_CALLS.labels(kind, model, key_owner, call.outcome).inc()
