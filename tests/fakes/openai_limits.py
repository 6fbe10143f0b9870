"""The fake OpenAI's rate limits, modelled on OpenAI's: per key and endpoint, a bucket of
requests (and optionally tokens) refilled continuously and charged on arrival."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def reset_text(seconds: float) -> str:
    """A duration the way OpenAI writes it in ``x-ratelimit-reset-*``: 120ms, 1.5s, 6m0s."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


@dataclass
class _Bucket:
    capacity: float
    rate: float
    level: float
    at: float

    def refill(self, now: float) -> float:
        self.level = min(self.capacity, self.level + self.rate * (now - self.at))
        self.at = now
        return self.level

    def headers(self, kind: str) -> dict[str, str]:
        return {
            f"x-ratelimit-limit-{kind}": str(int(self.capacity)),
            f"x-ratelimit-remaining-{kind}": str(max(0, math.floor(self.level))),
            f"x-ratelimit-reset-{kind}": reset_text((self.capacity - self.level) / self.rate),
        }


@dataclass
class Throttle:
    requests_per_second: float
    burst: float
    tokens_per_minute: float | None
    buckets: dict[tuple[str | None, str], tuple[_Bucket, _Bucket | None]] = field(
        default_factory=dict
    )
    refused: int = 0
    admitted: int = 0

    def admit(
        self, key: str | None, path: str, tokens: int, now: float
    ) -> tuple[float, bool, dict[str, str]]:
        """Charge one request of ``tokens`` arriving ``now``: how long it would have to wait (0:
        admitted), whether the token limit is what refuses it, and the x-ratelimit headers."""
        if (key, path) not in self.buckets:
            per_minute = self.tokens_per_minute
            self.buckets[(key, path)] = (
                _Bucket(self.burst, self.requests_per_second, self.burst, now),
                _Bucket(per_minute, per_minute / 60, per_minute, now) if per_minute else None,
            )
        requests, token_bucket = self.buckets[(key, path)]
        requests.refill(now)
        request_wait = max(0.0, (1 - requests.level) / requests.rate)
        token_wait = 0.0
        if token_bucket is not None:
            token_bucket.refill(now)
            needed = min(tokens, token_bucket.capacity)
            token_wait = max(0.0, (needed - token_bucket.level) / token_bucket.rate)
        wait = max(request_wait, token_wait)
        if wait <= 0:
            requests.level -= 1
            if token_bucket is not None:
                token_bucket.level -= tokens
            self.admitted += 1
        else:
            self.refused += 1
        headers = requests.headers("requests")
        if token_bucket is not None:
            headers.update(token_bucket.headers("tokens"))
        return wait, token_wait > request_wait, headers
