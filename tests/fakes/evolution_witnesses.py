"""The fake Evolution's witnesses of a send: its message store (``findMessages``) and the
``send.message`` webhook it posts back to our service (``echo_to``), possibly twice, as the real
one does with ``SEND_MESSAGE`` enabled and its webhook retries."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

FIXTURES = Path(__file__).parent.parent / "fixtures" / "evolution"


class SendWitnesses:
    """Mixed into :class:`~tests.fakes.evolution.FakeEvolution`; ``_stored`` holds what its
    sends left in Evolution's database (``{"instance", "record"}``)."""

    lock: threading.Lock

    def _init_witnesses(self) -> None:
        self.stores_messages = True  # Evolution's DATABASE_SAVE_DATA_NEW_MESSAGE
        self._stored: list[dict[str, Any]] = []
        self._searches: list[dict[str, Any]] = []
        self._echo_url: str | None = None
        self._echo_headers: dict[str, str] = {}
        self._echo_times = 1
        self._echo_delay = 0.0
        self._echoes: list[int] = []
        self._background: set[asyncio.Task[None]] = set()

    def echo_to(
        self,
        url: str | None,
        headers: dict[str, str] | None = None,
        *,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Report every send as a ``send.message`` webhook to ``url`` (``times`` deliveries,
        ``delay`` seconds after the send), as Evolution does with ``SEND_MESSAGE`` enabled;
        ``None`` stops it."""
        with self.lock:
            self._echo_url = url
            self._echo_headers = dict(headers or {})
            self._echo_times = times
            self._echo_delay = delay

    @property
    def echoes(self) -> list[int]:
        """Status codes our service answered to the ``send.message`` webhooks."""
        with self.lock:
            return list(self._echoes)

    @property
    def searches(self) -> list[dict[str, Any]]:
        """findMessages calls: ``{instance, body, apikey}``."""
        with self.lock:
            return list(self._searches)

    def _witness(self, instance: str, data: dict[str, Any]) -> None:
        """A send went out: store it (when Evolution stores messages) and echo it."""
        with self.lock:
            if self.stores_messages:
                self._stored.append({"instance": instance, "record": copy.deepcopy(data)})
        self._echo(instance, data)

    def _echo(self, instance: str, data: dict[str, Any]) -> None:
        with self.lock:
            url, headers = self._echo_url, dict(self._echo_headers)
            times, delay = self._echo_times, self._echo_delay
        if url is None:
            return
        envelope = json.loads((FIXTURES / "send.message.json").read_text())
        envelope.update(instance=instance, data=copy.deepcopy(data), destination=url)
        task = asyncio.get_running_loop().create_task(
            self._deliver_echo(url, headers, envelope, times, delay)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver_echo(
        self, url: str, headers: dict[str, str], envelope: dict[str, Any], times: int, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(times):
                try:
                    status = (await http.post(url, json=envelope, headers=headers)).status_code
                except (httpx.HTTPError, httpx.InvalidURL):
                    status = 0  # our service was down: Evolution would retry, the test sees 0
                with self.lock:
                    self._echoes.append(status)

    async def _find_messages(self, request: Request, raw: bytes) -> Response:
        """v2: ``{where: {key, messageTimestamp: {gte, lte}}, offset, page}`` →
        ``{messages: {total, pages, currentPage, records}}``; v1 (``limit``) → a list."""
        body = _json_object(raw)
        if body is None:
            return JSONResponse(
                {
                    "status": 400,
                    "error": "Bad Request",
                    "response": {"message": ["requires property where"]},
                },
                400,
            )
        instance = request.path_params["instance"]
        with self.lock:
            self._searches.append(
                {"instance": instance, "body": body, "apikey": self.request_key(request)}
            )
            stored = [item["record"] for item in self._stored if item["instance"] == instance]
        where = body.get("where") if isinstance(body.get("where"), dict) else {}
        key_filter = where.get("key") if isinstance(where.get("key"), dict) else {}
        records = [
            record
            for record in stored
            if all(record["key"].get(name) == value for name, value in key_filter.items())
        ]
        stamp = where.get("messageTimestamp")
        if isinstance(stamp, dict) and "gte" in stamp and "lte" in stamp:
            low, high = _epoch(stamp["gte"]), _epoch(stamp["lte"])
            records = [r for r in records if low <= r["messageTimestamp"] <= high]
        records.sort(key=lambda r: r["messageTimestamp"], reverse=True)
        if "limit" in body and "offset" not in body and "page" not in body:  # v1
            return JSONResponse(records[: int(body["limit"])], 200)
        size = int(body.get("offset") or 50)
        page = int(body.get("page") or 1)
        return JSONResponse(
            {
                "messages": {
                    "total": len(records),
                    "pages": -(-len(records) // size),
                    "currentPage": page,
                    "records": records[(page - 1) * size : page * size],
                }
            },
            200,
        )


def _epoch(value: Any) -> float:
    """``new Date(value).getTime() / 1000`` for ISO strings and millisecond numbers."""
    if isinstance(value, int | float):
        return value / 1000
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
