"""The client-side copy of a provider's rate limits, against a provider modelled in process: a
bucket refilled continuously, answering with OpenAI's headers (remaining rounded down)."""

from __future__ import annotations

import asyncio
import itertools
import math
import time

from intellizap.rate_limits import ProviderLimits, WaitTooLong


class Provider:
    """OpenAI's way: a bucket of ``burst`` requests refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.level, self.at = burst, time.monotonic()
        self.admitted = self.refused = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        self.level = min(self.burst, self.level + self.rate * (now - self.at))
        self.at = now
        ok = self.level >= 1
        if ok:
            self.level -= 1
            self.admitted += 1
        else:
            self.refused += 1
        headers = {
            "x-ratelimit-limit-requests": str(int(self.burst)),
            "x-ratelimit-remaining-requests": str(math.floor(self.level)),
            "x-ratelimit-reset-requests": f"{round((self.burst - self.level) / self.rate * 1000)}ms",
        }
        if not ok:
            headers["retry-after-ms"] = str(math.ceil((1 - self.level) / self.rate * 1000))
        return ok, headers


async def run_calls(
    limits: ProviderLimits, provider: Provider, calls: int, concurrency: int, latency: float
) -> int:
    """Make ``calls`` calls, at most ``concurrency`` at once; returns how many were sent away
    (:class:`WaitTooLong`)."""
    slots = asyncio.Semaphore(concurrency)
    sent_away = 0

    async def call() -> None:
        nonlocal sent_away
        async with slots:
            while True:
                try:
                    permit = await limits.acquire(0, max_wait=30)
                except WaitTooLong as exc:
                    sent_away += 1
                    await asyncio.sleep(exc.wait)
                    continue
                ok, headers = provider.take()
                await asyncio.sleep(latency if ok else 0.005)
                limits.finish(permit, headers, throttled=not ok)
                if ok:
                    return

    await asyncio.gather(*(call() for _ in range(calls)))
    return sent_away


async def test_callers_spaced_by_the_headers_are_not_refused() -> None:
    """Before the copy learnt the rate as an upper bound and kept sleepers' turns, ~12 % of such
    calls met a 429 (the refill rate read from a rounded-down ``remaining`` ran up to twice
    too fast, and newcomers got turns among the sleepers')."""
    provider = Provider(rate=40, burst=8)

    await run_calls(ProviderLimits(), provider, calls=160, concurrency=60, latency=0.4)

    assert provider.admitted == 160
    assert provider.refused <= 2


async def test_callers_beyond_the_wait_allowed_are_sent_away_with_spaced_turns() -> None:
    limits = ProviderLimits()
    provider = Provider(rate=10, burst=2)
    first = await limits.acquire(0, max_wait=1)
    limits.finish(first, provider.take()[1])
    for _ in range(6):  # fill the next second of turns
        permit = await limits.acquire(0, max_wait=1)
        limits.finish(permit, provider.take()[1])

    turns = []
    for _ in range(4):
        try:
            await limits.acquire(0, max_wait=0.05)
        except WaitTooLong as exc:
            turns.append(exc.wait)
    assert len(turns) == 4
    assert all(later > earlier for earlier, later in itertools.pairwise(turns))
    assert provider.refused == 0
