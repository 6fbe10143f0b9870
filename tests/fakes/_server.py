"""Shared machinery of the fake HTTP servers: request log, failure injection, delays and gates.

A fake runs under a real uvicorn server in another thread (``tests.conftest.serve_in_thread``);
tests drive and inspect it from the main thread, so every piece of shared state is guarded by a lock.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Handler = Callable[[Request, bytes], Awaitable[Response]]


@dataclass
class RecordedRequest:
    """One request as the fake saw it; ``status`` is ``None`` while it is still being served."""

    method: str
    path: str
    key: str | None
    json: Any
    at: float
    query: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    peer: tuple[str, int] | None = None
    """The client's address and port: one per TCP connection, so reused connections show."""

    @property
    def apikey(self) -> str | None:
        return self.key

    @property
    def api_key(self) -> str | None:
        return self.key


class Gate(threading.Event):
    """Holds matching requests until :meth:`release`; ``arrived`` is set when one is waiting."""

    def __init__(self, path_contains: str) -> None:
        super().__init__()
        self.path_contains = path_contains
        self.arrived = threading.Event()
        self.waiting = 0

    def release(self) -> None:
        self.set()

    def wait_arrived(self, timeout: float = 10.0) -> bool:
        return self.arrived.wait(timeout)


@dataclass
class _Failure:
    path_contains: str
    status: int
    times: int
    body: Any
    headers: dict[str, str]


class FakeServer:
    """Base class: subclasses declare ``routes()`` and the auth/error conventions of the real service."""

    url_suffix = ""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.url = ""
        self._requests: list[RecordedRequest] = []
        self._failures: list[_Failure] = []
        self._delays: dict[str, float] = {}
        self._gates: list[Gate] = []
        self.app = Starlette(
            routes=[
                Route(path, self._wrap(handler), methods=[method])
                for method, path, handler in self.routes()
            ]
        )

    # --- to override -------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    def request_key(self, request: Request) -> str | None:
        raise NotImplementedError

    def check_auth(self, request: Request, key: str | None) -> Response | None:
        return None

    def error_body(self, status: int) -> Any:
        raise NotImplementedError

    def failure_headers(self, status: int, retry_after: int | None) -> dict[str, str]:
        return {}

    # --- running -----------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def running(cls, **kwargs: Any) -> Iterator[Self]:
        """``with FakeX.running() as fake:`` — a started server; ``fake.url`` is its base URL."""
        fake = cls(**kwargs)
        with fake.serve():
            yield fake

    @contextmanager
    def serve(self) -> Iterator[str]:
        from tests.conftest import serve_in_thread

        with serve_in_thread(self.app) as base:
            self.url = base + self.url_suffix
            try:
                yield self.url
            finally:
                with self.lock:  # never leave a request hanging: uvicorn would wait for it
                    for gate in self._gates:
                        gate.release()

    # --- test controls -----------------------------------------------------------------------
    def fail_next(
        self,
        path_contains: str,
        status: int,
        times: int = 1,
        body: Any = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        """The next ``times`` requests whose path contains ``path_contains`` get ``status``."""
        headers = self.failure_headers(status, retry_after)
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        failure = _Failure(path_contains, status, times, body, headers)
        with self.lock:
            self._failures.append(failure)

    def delay(self, path_contains: str, seconds: float) -> None:
        """Answer matching requests ``seconds`` late (0 removes the delay)."""
        with self.lock:
            if seconds > 0:
                self._delays[path_contains] = seconds
            else:
                self._delays.pop(path_contains, None)

    def block(self, path_contains: str) -> Gate:
        """Hold matching requests until ``gate.release()`` (the server keeps serving others)."""
        gate = Gate(path_contains)
        with self.lock:
            self._gates.append(gate)
        return gate

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self._requests)

    def requests_to(self, path_contains: str) -> list[RecordedRequest]:
        return [r for r in self.requests if path_contains in r.path]

    # --- plumbing ----------------------------------------------------------------------------
    def _wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None  # multipart or garbage
            path = request.url.path
            record = RecordedRequest(
                request.method,
                path,
                self.request_key(request),
                parsed,
                time.monotonic(),
                dict(request.query_params),
                peer=(request.client.host, request.client.port) if request.client else None,
            )
            with self.lock:
                self._requests.append(record)
                gates = [g for g in self._gates if g.path_contains in path and not g.is_set()]
                delay = sum(s for p, s in self._delays.items() if p in path)
            for gate in gates:
                with self.lock:
                    gate.waiting += 1
                gate.arrived.set()
                while not gate.is_set():  # noqa: ASYNC110 - a threading.Event set by the test thread
                    await asyncio.sleep(0.01)
                with self.lock:
                    gate.waiting -= 1
            if delay:
                await asyncio.sleep(delay)
            response = self._injected(path) or self.check_auth(request, record.key)
            if response is None:
                response = await handler(request, body)
            with self.lock:
                record.status = response.status_code
            return response

        return endpoint

    def _injected(self, path: str) -> Response | None:
        with self.lock:
            for failure in self._failures:
                if failure.path_contains in path and failure.times > 0:
                    failure.times -= 1
                    break
            else:
                return None
            self._failures = [f for f in self._failures if f.times > 0]
        body = failure.body if failure.body is not None else self.error_body(failure.status)
        return JSONResponse(body, failure.status, headers=failure.headers)
