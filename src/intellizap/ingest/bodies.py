"""Webhook bodies in memory: how many bytes may be held at once, and reading them.

Before this, an unauthenticated caller made the API read and parse up to ``WEBHOOK_MAX_BYTES``
before its 401, and three concurrent 28 MiB bodies cost 673 MiB. Now:

- a request with no valid transport credential is refused before its body is read unless the
  body's ``apikey`` can authenticate it (:mod:`intellizap.ingest.auth`);
- bodies read only to check that ``apikey`` share ``WEBHOOK_UNAUTHENTICATED_BUDGET_BYTES``. One
  that does not fit is answered ``503`` at once, without waiting: a thousand such clients hold no
  more than ten. They are never parsed unless a scan of the raw bytes finds a matching key, and
  must arrive within ``WEBHOOK_UNAUTHENTICATED_READ_SECONDS``;
- every body counts against ``WEBHOOK_BODY_BUDGET_BYTES``, and the bodies sent with one
  instance's credential against a quarter of it, so one hostile tenant cannot starve the others;
  an authenticated request waits up to ``AUTHENTICATED_WAIT_SECONDS`` for room, then gets ``503``
  (Evolution retries it).

A pool that is empty always admits one body, so a single body never waits for a budget smaller
than itself. Bytes are counted by the declared ``Content-Length`` (the HTTP parser stops a body
at that length) or, without one, as ``WEBHOOK_MAX_BYTES``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import Request

from intellizap.ingest.errors import BodyTimeout, BodyTooLarge, Overloaded

AUTHENTICATED_WAIT_SECONDS = 10.0
INSTANCE_SHARE = 4
"""An instance's bodies may hold at most 1/INSTANCE_SHARE of the whole budget."""


@dataclass(slots=True)
class Hold:
    """Bytes one request holds in the budget."""

    size: int
    instance: str | None
    unauthenticated: bool


class BodyBudget:
    """Byte counts of the bodies in memory (one event loop: no lock needed)."""

    def __init__(self, *, total_bytes: int, unauthenticated_bytes: int) -> None:
        self._total_limit = total_bytes
        self._instance_limit = total_bytes // INSTANCE_SHARE
        self._unauthenticated_limit = unauthenticated_bytes
        self._total = 0
        self._unauthenticated = 0
        self._by_instance: dict[str, int] = {}
        self._room = asyncio.Condition()
        self._waiting = 0

    @property
    def held(self) -> tuple[int, int]:
        """(all bytes held, bytes held unauthenticated)."""
        return self._total, self._unauthenticated

    def _fits(self, size: int, instance: str | None, unauthenticated: bool) -> bool:
        if self._total and self._total + size > self._total_limit:
            return False
        if unauthenticated and self._unauthenticated:
            return self._unauthenticated + size <= self._unauthenticated_limit
        if instance is not None:
            used = self._by_instance.get(instance, 0)
            return not used or used + size <= self._instance_limit
        return True

    def _take(self, hold: Hold) -> None:
        self._total += hold.size
        if hold.unauthenticated:
            self._unauthenticated += hold.size
        if hold.instance is not None:
            self._by_instance[hold.instance] = self._by_instance.get(hold.instance, 0) + hold.size

    async def _give_back(self, hold: Hold) -> None:
        self._total -= hold.size
        if hold.unauthenticated:
            self._unauthenticated -= hold.size
        if hold.instance is not None:
            left = self._by_instance[hold.instance] - hold.size
            if left:
                self._by_instance[hold.instance] = left
            else:
                del self._by_instance[hold.instance]
        if self._waiting:
            async with self._room:
                self._room.notify_all()

    async def authenticated(self, hold: Hold) -> None:
        """The body held as unauthenticated turned out to be authenticated (its apikey)."""
        if hold.unauthenticated:
            hold.unauthenticated = False
            self._unauthenticated -= hold.size
            if self._waiting:
                async with self._room:
                    self._room.notify_all()

    def hold(self, size: int, *, instance: str | None, unauthenticated: bool) -> _Holding:
        """``async with budget.hold(…) as hold:`` holds ``size`` bytes while the body is read and
        handled. Raises ``Overloaded`` when an unauthenticated body does not fit, or an
        authenticated one found no room in time."""
        return _Holding(self, Hold(size, instance, unauthenticated))

    async def _take_or_wait(self, hold: Hold) -> None:
        if self._waiting or not self._fits(hold.size, hold.instance, hold.unauthenticated):
            if hold.unauthenticated:
                raise Overloaded(
                    "too many webhook bodies are waiting to be authenticated; retry later, or "
                    "send the instance's credentials in the headers (`intellizap webhook set`)"
                )
            await self._wait_for_room(hold)
        self._take(hold)

    async def _wait_for_room(self, hold: Hold) -> None:
        self._waiting += 1
        try:
            async with self._room:
                await asyncio.wait_for(
                    self._room.wait_for(
                        lambda: self._fits(hold.size, hold.instance, hold.unauthenticated)
                    ),
                    AUTHENTICATED_WAIT_SECONDS,
                )
        except TimeoutError:
            raise Overloaded("too many webhook bodies in memory; retry later") from None
        finally:
            self._waiting -= 1


class _Holding:
    """The context manager of :meth:`BodyBudget.hold` (a class, not a generator: this runs on
    every webhook)."""

    __slots__ = ("_budget", "_hold")

    def __init__(self, budget: BodyBudget, hold: Hold) -> None:
        self._budget = budget
        self._hold = hold

    async def __aenter__(self) -> Hold:
        await self._budget._take_or_wait(self._hold)
        return self._hold

    async def __aexit__(self, *exc_info: object) -> None:
        await self._budget._give_back(self._hold)


def declared_size(request: Request, limit: int) -> int:
    """The bytes to hold for this request's body: its ``Content-Length`` (413 above
    ``limit``), or ``limit`` when it does not say."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return limit
    size = int(declared)
    if size > limit:
        raise BodyTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    return size


async def read_body(
    request: Request, limit: int, *, deadline_seconds: float | None = None
) -> bytes | bytearray:
    """The whole body, at most ``limit`` bytes, within ``deadline_seconds`` if given (for
    unauthenticated bodies: a slow one would hold the budget)."""
    if deadline_seconds is None:
        return await _read(request, limit)
    try:
        async with asyncio.timeout(deadline_seconds):
            return await _read(request, limit)
    except TimeoutError:
        raise BodyTimeout(f"the body did not arrive within {deadline_seconds:g} s") from None


async def _read(request: Request, limit: int) -> bytes | bytearray:
    # One chunk (the common case) is returned as it came. Several grow one buffer in place
    # (a large one is remapped, not copied), so a body costs its size once, not twice.
    first: bytes | None = None
    buffer: bytearray | None = None
    size = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
        if first is None:
            first = chunk
        elif buffer is None:
            buffer = bytearray(first)
            buffer += chunk
        else:
            buffer += chunk
    if buffer is not None:
        return buffer
    return first if first is not None else b""
