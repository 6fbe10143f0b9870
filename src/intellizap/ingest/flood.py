"""Per-instance flood control (429), so one noisy instance cannot starve the others.

A token bucket per instance, in process memory: with several API replicas each enforces the limit
on its own share of the traffic, which is what protects that replica.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class FloodGuard:
    def __init__(self, *, rate: float, burst: int, max_instances: int = 100_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_instances = max_instances
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, instance: str) -> bool:
        """Take one request from ``instance``'s bucket; False when it is empty."""
        now = time.monotonic()
        tokens, last = self._buckets.get(instance, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[instance] = (tokens - 1.0 if allowed else tokens, now)
        self._buckets.move_to_end(instance)
        if len(self._buckets) > self._max_instances:
            self._buckets.popitem(last=False)
        return allowed
