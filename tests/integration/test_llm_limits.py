"""LLM calls shaped to the provider's limits, against the fake OpenAI server throttling the way
OpenAI does (429 + x-ratelimit-* headers + Retry-After), over real HTTP."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from intellizap.llm import ApiKey, InvalidApiKey, KeyOwner, Llm, OutOfCredit, RateLimited
from tests.fakes.openai import FakeOpenAI

PLATFORM = ApiKey("sk-platform-0123456789abcdef", KeyOwner.PLATFORM)
OWN = ApiKey("sk-tenant-own-0123456789abcdef", KeyOwner.OWN)
MESSAGES = [{"role": "user", "content": "resuma"}]


@pytest.fixture
def ai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        yield fake


async def complete(llm: Llm, key: ApiKey = PLATFORM) -> str:
    result = await llm.complete(key, model="gpt-4o-mini", messages=MESSAGES, max_tokens=50)
    return result.text


async def test_a_burst_of_calls_is_paced_at_the_providers_rate_instead_of_refused(
    ai: FakeOpenAI,
) -> None:
    """Before: every call past the provider's burst got 429 and failed (the job's problem)."""
    ai.throttle(requests_per_second=10, burst=3)
    llm = Llm(ai.url, max_wait=60)
    try:
        texts = await asyncio.gather(*(complete(llm) for _ in range(30)))
    finally:
        await llm.aclose()

    assert texts == ["Resumo de teste."] * 30
    admitted, refused = ai.throttled
    assert admitted == 30
    # The first call learns the limits; the rest are spaced by them. A 429 or two at a bucket's
    # edge is fine; a storm (27 of them without the limiter) is not.
    assert refused <= 3


async def test_a_call_that_would_wait_too_long_is_handed_back_with_when_to_retry(
    ai: FakeOpenAI,
) -> None:
    ai.throttle(requests_per_second=1, burst=1)
    llm = Llm(ai.url, max_wait=1.5)
    try:
        outcomes = await asyncio.gather(*(complete(llm) for _ in range(8)), return_exceptions=True)
    finally:
        await llm.aclose()

    done = [o for o in outcomes if isinstance(o, str)]
    deferred = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(done) + len(deferred) == 8
    assert 1 <= len(done) <= 3
    assert deferred
    # Each comes back later than the one before: they are spaced at the provider's rate too.
    waits = sorted(error.retry_after or 0 for error in deferred)
    assert waits[0] > 0
    assert all(later - earlier >= 0.5 for earlier, later in itertools.pairwise(waits))
    assert all(error.owner is KeyOwner.PLATFORM for error in deferred)
    # Handed back without being sent: the provider saw only the calls that had room.
    assert ai.throttled[1] <= 1


async def test_a_tenants_own_key_is_not_held_back_by_the_platform_keys_limit(
    ai: FakeOpenAI,
) -> None:
    ai.throttle(requests_per_second=0.2, burst=1)
    llm = Llm(ai.url, max_wait=1)
    try:
        await complete(llm, PLATFORM)  # the platform key's only request for 5 s
        with pytest.raises(RateLimited):
            await complete(llm, PLATFORM)
        assert await complete(llm, OWN) == "Resumo de teste."
    finally:
        await llm.aclose()


async def test_a_429_that_got_through_is_sent_again_after_its_retry_after(
    ai: FakeOpenAI,
) -> None:
    ai.fail_next("/chat/completions", 429, times=2, retry_after=1)
    llm = Llm(ai.url, max_wait=30)
    try:
        assert await complete(llm) == "Resumo de teste."
    finally:
        await llm.aclose()
    assert [r.status for r in ai.requests_to("/chat/completions")] == [429, 429, 200]


async def test_an_account_without_credit_is_not_reported_as_a_rate_limit(
    ai: FakeOpenAI,
) -> None:
    ai.out_of_credit_keys = {OWN.secret}
    llm = Llm(ai.url, max_wait=30)
    try:
        with pytest.raises(OutOfCredit) as error:
            await complete(llm, OWN)
    finally:
        await llm.aclose()
    assert error.value.owner is KeyOwner.OWN
    assert len(ai.requests_to("/chat/completions")) == 1  # not hammered as if throttled


def llm_samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(REGISTRY).decode())
        for sample in family.samples
        if sample.name.startswith("intellizap_llm_")
    }


async def test_calls_are_counted_by_model_key_owner_and_outcome_never_by_tenant(
    ai: FakeOpenAI,
) -> None:
    before = llm_samples()
    ai.fail_next("/chat/completions", 401)
    llm = Llm(ai.url, max_wait=5)
    try:
        with pytest.raises(InvalidApiKey):
            await complete(llm, OWN)
        await complete(llm, OWN)
        await complete(llm, PLATFORM)
    finally:
        await llm.aclose()
    after = llm_samples()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    calls = "intellizap_llm_calls_total"
    own = {"kind": "resumo", "model": "gpt-4o-mini", "key_owner": "propria"}
    platform = {**own, "key_owner": "plataforma"}
    assert delta(calls, **own, outcome="ok") == 1
    assert delta(calls, **own, outcome="invalid_key") == 1
    assert delta(calls, **platform, outcome="ok") == 1
    assert delta("intellizap_llm_tokens_total", **platform, direction="output") > 0
    assert delta("intellizap_llm_call_duration_seconds_count", **platform) == 1
    assert all("usuario_id" not in dict(labels) for _, labels in after)
