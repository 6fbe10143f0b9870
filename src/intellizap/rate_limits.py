"""A client-side copy of an API provider's rate limits, kept from the headers it answers with.

OpenAI (and the compatible servers that copy it) answers every request with
``x-ratelimit-limit-requests`` / ``-remaining-requests`` / ``-reset-requests`` and the same three
for ``-tokens``, where *reset* is the time until the limit is whole again (``"120ms"``, ``"1s"``,
``"6m0s"``). The provider refills each limit continuously, so the three values give its bucket:
its size (limit), its level (remaining) and its refill rate ((limit - remaining) / reset). A
``429`` adds ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``.

:class:`ProviderLimits` mirrors one such pair of buckets (one per key and model: that is how the
provider counts). A caller reserves a request and its estimated tokens before sending: when the
bucket has them it goes at once, otherwise it is given the instant the bucket will have them and
sleeps until then; callers are spaced at the provider's rate in the order they arrive, instead
of all firing and mostly getting ``429``. A caller that would wait longer than it may is told how
long (:class:`WaitTooLong`) without reserving, so its job can give its worker slot back and come
later; such callers are themselves spaced at the provider's rate.

Three details keep the copy from sending into 429s (measured with ``tests/unit/
test_provider_limits.py`` and ``bench/burst.py``): the refill rate is learnt as the lowest upper
bound seen (``remaining`` is rounded down, so one reading can double it); an answer may lower the
copy's level but not raise it while callers sleep until their turns (a newcomer would get a turn
among theirs); and a share of each limit is kept in reserve for calls that arrive bunched.

Each process keeps its own copy. The headers carry the provider's view, which includes every
other process using the key, so each process corrects its copy with every answer: several
workers on one key converge on sharing its limit, with the odd ``429`` while they do.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

#: After a 429 from a server that gives no rate-limit information, this long before trying again.
UNKNOWN_BACKOFF = 1.0
#: How long a learnt refill rate is kept before it is learnt again from the next answers.
RELEARN_EVERY = 600.0
#: How long after we send a request the provider may count it (network and queueing latency).
ADMISSION_ALLOWANCE = 0.25
#: The share of each limit kept unused: calls are spaced at the provider's refill rate, but they
#: do not arrive exactly on schedule (network, scheduling), and with the bucket kept at zero every
#: two that arrive together meet a 429 (which costs the request and blocks the key for its
#: Retry-After). A reserve absorbs such bunches; the rate of calls stays the provider's.
RESERVE = 0.4

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """Seconds in a reset header: ``"20ms"``, ``"1s"``, ``"6m0s"``, ``"1h2m3.5s"``, or a plain
    number of seconds. None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip().lower()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class WaitTooLong(Exception):
    """The provider's limit has room for this call only in ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the provider's rate limit has room in {wait:.1f}s")
        self.wait = wait


@dataclass(slots=True)
class _Bucket:
    """One limit (requests or tokens) as the provider sees it, plus our own reservations."""

    capacity: float | None = None
    rate: float | None = None
    """Refill per second, None until the headers showed it."""
    rate_since: float = 0.0
    level: float = 0.0
    """At ``at``; below zero when callers have reserved what is still to come."""
    at: float = 0.0
    sent: float = 0.0
    """Everything we ever sent, so an answer can tell what we sent after its request."""
    unsent: float = 0.0
    """Reserved by callers still sleeping until their turn."""

    def level_at(self, now: float) -> float:
        if self.capacity is None:
            return float("inf")
        level = self.level + (self.rate or 0.0) * (now - self.at)
        return min(level, self.capacity)

    def wait_for(self, amount: float, now: float) -> float:
        if self.capacity is None:
            return 0.0
        amount = min(amount, self.capacity)  # a call bigger than the limit waits for all of it
        reserve = min(self.capacity - amount, RESERVE * self.capacity)
        missing = amount + reserve - self.level_at(now)
        if missing <= 0:
            return 0.0
        return missing / self.rate if self.rate else UNKNOWN_BACKOFF

    def take(self, amount: float, now: float) -> None:
        if self.capacity is not None:
            self.level = self.level_at(now) - min(amount, self.capacity)
            self.at = now
        self.unsent += amount

    def give_back(self, amount: float, now: float) -> None:
        if self.capacity is not None:
            self.level = self.level_at(now) + min(amount, self.capacity)
            self.at = now
        self.unsent -= amount

    def mark_sent(self, amount: float) -> float:
        self.unsent -= amount
        self.sent += amount
        return self.sent

    def observe(
        self,
        limit: float | None,
        remaining: float | None,
        reset: float | None,
        *,
        sent_mark: float,
        sent_at: float,
        now: float,
    ) -> None:
        """Correct the copy with what the provider said about a request sent at ``sent_at``
        (when ``sent`` had reached ``sent_mark``, that request included)."""
        if limit is None or remaining is None or limit <= 0:
            return
        if limit != self.capacity or now - self.rate_since > RELEARN_EVERY:
            # New limits (another tier, another window), or time to drop an estimate that a
            # coarsely rounded reset may have pushed too low: learn the rate again.
            self.rate, self.rate_since = None, now
        if reset is not None and reset > 0 and remaining < limit:
            # ``remaining`` is rounded down, so this is an upper bound of the refill rate; the
            # lowest seen is the closest (an estimate too high would send calls into 429s).
            bound = (limit - remaining) / reset
            self.rate = bound if self.rate is None else min(self.rate, bound)
        # The provider counted the request when it arrived, some time after we sent it: assume
        # late (by up to ADMISSION_ALLOWANCE), so the copy errs towards an emptier bucket.
        admitted = min(now, sent_at + ADMISSION_ALLOWANCE)
        refill = (self.rate or 0.0) * max(0.0, now - admitted)
        since = self.sent - sent_mark  # what we sent after that request
        estimate = min(limit, remaining + refill - since) - self.unsent
        if self.unsent > 0 and self.capacity == limit:
            # Callers are asleep until the turns they were given: the copy may learn of less
            # room (another process on the key), never of more, or a newcomer would be given a
            # turn among theirs and the two would go out together.
            estimate = min(estimate, self.level_at(now))
        self.capacity = limit
        self.level = estimate
        self.at = now


@dataclass(frozen=True, slots=True)
class Permit:
    """A reservation that was sent: what :meth:`ProviderLimits.observe` needs to read the answer."""

    tokens: float
    sent_at: float
    requests_mark: float
    tokens_mark: float
    probe: bool = False


@dataclass(slots=True)
class ProviderLimits:
    """The request and token limits of one key and model, as seen by this process."""

    requests: _Bucket = field(default_factory=_Bucket)
    tokens: _Bucket = field(default_factory=_Bucket)
    blocked_until: float = 0.0
    """Set by a 429's Retry-After (or :data:`UNKNOWN_BACKOFF` without one)."""
    deferred_until: float = 0.0
    """When the last caller sent away (:class:`WaitTooLong`) was told to come back."""
    _random: random.Random = field(default_factory=random.Random)
    _probe: asyncio.Event | None = None
    """Set while the very first call is in flight: the others wait for what it learns rather
    than all going at once into limits nobody knows yet."""
    _probed: bool = False

    def _wait(self, tokens: float, now: float) -> float:
        blocked = self.blocked_until - now
        return max(self.requests.wait_for(1, now), self.tokens.wait_for(tokens, now), blocked)

    async def acquire(self, tokens: float, *, max_wait: float) -> Permit:
        """Wait for room for one request of ``tokens`` estimated tokens, then count it as sent.

        Raises :class:`WaitTooLong` (reserving nothing) when that would take over ``max_wait``.
        """
        probe = await self._first_call(max_wait)
        now = time.monotonic()
        wait = self._wait(tokens, now)
        if wait > 0 and self.requests.rate is None and self.blocked_until > now:
            # Blocked by a 429 on a server that does not say its rate: spread the callers over
            # the block instead of releasing them all at its end.
            wait += self._random.uniform(0, max(UNKNOWN_BACKOFF, self.blocked_until - now))
        if wait > max_wait:
            spacing = 1 / self.requests.rate if self.requests.rate else UNKNOWN_BACKOFF
            self.deferred_until = max(self.deferred_until + spacing, now + wait)
            raise WaitTooLong(self.deferred_until - now)
        self.requests.take(1, now)
        self.tokens.take(tokens, now)
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                later = time.monotonic()
                self.requests.give_back(1, later)
                self.tokens.give_back(tokens, later)
                raise
        return Permit(
            tokens=tokens,
            sent_at=time.monotonic(),
            requests_mark=self.requests.mark_sent(1),
            tokens_mark=self.tokens.mark_sent(tokens),
            probe=probe,
        )

    async def _first_call(self, max_wait: float) -> bool:
        """True for the caller that makes the first call; the others wait for its answer."""
        if self._probed:
            return False
        if self._probe is None:
            self._probe = asyncio.Event()
            return True
        try:
            await asyncio.wait_for(self._probe.wait(), timeout=max(max_wait, 0.001))
        except TimeoutError:
            raise WaitTooLong(max_wait) from None
        return False

    def finish(
        self,
        permit: Permit,
        headers: Mapping[str, str] | None = None,
        *,
        throttled: bool = False,
    ) -> float | None:
        """Read a call's answer: its rate-limit headers (success or failure; None when it got
        no answer). For a 429 (``throttled``), block new calls for its Retry-After; returns that
        delay (None when not throttled)."""
        if permit.probe and self._probe is not None:
            self._probed = True
            self._probe.set()
            self._probe = None
        now = time.monotonic()
        if headers is not None:
            for bucket, kind, mark in (
                (self.requests, "requests", permit.requests_mark),
                (self.tokens, "tokens", permit.tokens_mark),
            ):
                bucket.observe(
                    _number(headers, f"x-ratelimit-limit-{kind}"),
                    _number(headers, f"x-ratelimit-remaining-{kind}"),
                    parse_duration(headers.get(f"x-ratelimit-reset-{kind}")),
                    sent_mark=mark,
                    sent_at=permit.sent_at,
                    now=now,
                )
        if not throttled:
            return None
        delay = retry_after(headers)
        if delay is None:
            delay = max(self._wait(permit.tokens, now), UNKNOWN_BACKOFF)
        self.blocked_until = max(self.blocked_until, now + delay)
        return delay
