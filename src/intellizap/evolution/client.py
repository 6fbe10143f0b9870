"""Async HTTP client of the Evolution API (the WhatsApp gateway).

One client per process, with a connection pool. Reads (every GET, media download, message
search) are retried here with backoff on network errors and 5xx. A send is not: it is retried
only when the connection could not even be made (nothing was written), and any later failure —
a read timeout, a dropped connection, a 5xx — is :class:`DeliveryUnknown`, because Evolution may
have sent the message; the send ledger finds out before anything is posted again. 4xx become the
specific errors of :mod:`intellizap.evolution.errors`. The ``apikey`` header is the tenant's own
instance token when known, else the global ``EVOLUTION_API_KEY``. Bodies follow ``reference.md``
§4 for v2 (default) and v1 (``EVOLUTION_API_VERSION=1``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from intellizap.evolution.errors import (
    BadRequest,
    DeliveryUnknown,
    EvolutionError,
    EvolutionUnavailable,
    InstanceNotFound,
    NotAuthorized,
    NotOnWhatsApp,
)
from intellizap.evolution.message_search import (
    FoundMessage,
    found_messages,
    pages,
    search_body,
)
from intellizap.evolution.webhooks import WebhookConfig, parse_found, set_body
from intellizap.logging import get_logger
from intellizap.settings import Settings

log = get_logger(__name__)

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Raised before a single byte of the request left this process: always safe to try again.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class Quote:
    """The message a reply quotes. ``message`` is the WhatsApp content shown in the quote."""

    message_id: str
    chat_jid: str
    from_me: bool = False
    participant: str | None = None
    message: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MediaFile:
    data_base64: str
    mimetype: str | None
    file_name: str | None


@dataclass(frozen=True, slots=True)
class GroupMetadata:
    jid: str
    subject: str | None


#: How long an idle connection is reused. Below the server's own idle timeout (Node's and
#: uvicorn's default is 5 s, and httpx's too): at equal timeouts a request can go out on a
#: connection the server is closing, fail with a read error, and leave a send's outcome unknown
#: (the ledger then waits before it may post again). Seen in bench/burst.py.
KEEPALIVE_SECONDS = 2.0


class EvolutionClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        api_version: Literal[1, 2] = 2,
        timeout: float = 30.0,
        attempts: int = 3,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._api_version = api_version
        self._attempts = attempts
        self._backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(
                max_connections=50,
                max_keepalive_connections=20,
                keepalive_expiry=KEEPALIVE_SECONDS,
            ),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> EvolutionClient:
        """The client for the configured Evolution server (global key, API version)."""
        return cls(
            settings.evolution_api_url,
            api_key=settings.evolution_api_key.get_secret_value()
            if settings.evolution_api_key
            else None,
            api_version=settings.evolution_api_version,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- calls -------------------------------------------------------------------------------

    async def send_text(
        self,
        instance: str,
        *,
        number: str,
        text: str,
        quote: Quote | None = None,
        mentioned: Sequence[str] = (),
        token: str | None = None,
    ) -> str | None:
        """Send ``text`` to ``number`` (a phone number or a group JID); return the new message id.
        ``mentioned``: numbers WhatsApp notifies (the text writes each as ``@<number>``).

        Raises :class:`DeliveryUnknown` when the message may have gone out without an answer
        saying so; every other error means it did not go out."""
        body: dict[str, Any]
        quoted = _quoted_body(quote) if quote else None
        if self._api_version == 1:
            options: dict[str, Any] = {"delay": 0, "presence": "composing", "linkPreview": False}
            if quoted:
                options["quoted"] = quoted
            if mentioned:
                options["mentions"] = {"everyOne": False, "mentioned": list(mentioned)}
            body = {"number": number, "options": options, "textMessage": {"text": text}}
        else:
            body = {"number": number, "text": text, "linkPreview": False}
            if quoted:
                body["quoted"] = quoted
            if mentioned:
                body["mentioned"] = list(mentioned)
        response = await self._request(
            "POST", f"/message/sendText/{_path(instance)}", token, json=body, acts=True
        )
        key = response.get("key") if isinstance(response, dict) else None
        message_id = key.get("id") if isinstance(key, dict) else None
        return message_id if isinstance(message_id, str) else None

    async def find_sent_messages(
        self,
        instance: str,
        *,
        chat_jid: str,
        since: datetime,
        until: datetime,
        token: str | None = None,
    ) -> list[FoundMessage]:
        """Our own messages in ``chat_jid`` that Evolution stored between ``since`` and ``until``,
        newest first (``findMessages``; Evolution keeps them with
        ``DATABASE_SAVE_DATA_NEW_MESSAGE=true``, as in its ``.env.example``). v2 filters by time
        on the server; v1 cannot, so its newest messages are read and filtered here."""
        path = f"/chat/findMessages/{_path(instance)}"
        found: list[FoundMessage] = []
        page = 1
        while True:
            body = search_body(self._api_version, chat_jid, since, until, page)
            response = await self._request("POST", path, token, json=body)
            found += found_messages(response)
            if page >= pages(response):
                break
            page += 1
        return [
            item
            for item in found
            if item.sent_at is None or since <= item.sent_at <= until  # v1, and a loose server
        ]

    async def get_media_base64(
        self,
        instance: str,
        *,
        key: dict[str, Any],
        message: dict[str, Any],
        token: str | None = None,
    ) -> MediaFile:
        """Download and decrypt a media message. The whole stored message is sent, not only its
        id, so this works also when Evolution keeps no database of messages."""
        response = await self._request(
            "POST",
            f"/chat/getBase64FromMediaMessage/{_path(instance)}",
            token,
            json={"message": {"key": key, "message": message}, "convertToMp4": False},
        )
        if not isinstance(response, dict) or not isinstance(response.get("base64"), str):
            raise BadRequest("Evolution returned no media for this message")
        mimetype = response.get("mimetype")
        file_name = response.get("fileName")
        return MediaFile(
            data_base64=response["base64"],
            mimetype=mimetype if isinstance(mimetype, str) else None,
            file_name=file_name if isinstance(file_name, str) else None,
        )

    async def fetch_all_groups(
        self, instance: str, *, token: str | None = None
    ) -> list[GroupMetadata]:
        """Every group the instance's number is in (without participants: much faster)."""
        response = await self._request(
            "GET",
            f"/group/fetchAllGroups/{_path(instance)}",
            token,
            params={"getParticipants": "false"},
        )
        if not isinstance(response, list):
            raise BadRequest("Evolution's fetchAllGroups did not return a list")
        return [group for item in response if (group := _group(item)) is not None]

    async def find_group_info(
        self, instance: str, group_jid: str, *, token: str | None = None
    ) -> GroupMetadata:
        response = await self._request(
            "GET", f"/group/findGroupInfos/{_path(instance)}", token, params={"groupJid": group_jid}
        )
        group = _group(response)
        if group is None:
            raise BadRequest(f"Evolution returned no information for group {group_jid}")
        return group

    # -- plumbing ----------------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, token: str | None, *, acts: bool = False, **kwargs: Any
    ) -> Any:
        """``acts``: the request changes something (a send), so it is repeated only when it
        certainly never reached the server."""
        api_key = token or self._api_key
        headers = {"apikey": api_key} if api_key else {}
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._http.request(method, path, headers=headers, **kwargs)
            except _NOTHING_SENT as exc:
                if attempt == self._attempts:
                    raise EvolutionUnavailable(
                        f"Evolution API unreachable: {type(exc).__name__}"
                    ) from exc
                await self._sleep(attempt)
                continue
            except httpx.TransportError as exc:
                if acts:
                    raise DeliveryUnknown(
                        f"no answer from Evolution on {path} ({type(exc).__name__}); "
                        "the request may have been carried out"
                    ) from exc
                if attempt == self._attempts:
                    raise EvolutionUnavailable(
                        f"Evolution API unreachable: {type(exc).__name__}"
                    ) from exc
                await self._sleep(attempt)
                continue
            if acts and response.status_code >= 500:
                raise DeliveryUnknown(
                    f"Evolution API error {response.status_code} on {path}: "
                    f"{_error_detail(_json(response))}; the request may have been carried out"
                )
            if not acts and response.status_code in _RETRYABLE_STATUS and attempt < self._attempts:
                log.info("Evolution answered %s, retrying", response.status_code, path=path)
                await self._sleep(attempt, response.headers.get("retry-after"))
                continue
            return _result(response, path)
        raise AssertionError("unreachable")

    async def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        delay = self._backoff * 2 ** (attempt - 1) * (1 + random.random() / 4)  # noqa: S311
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 30.0))
        await asyncio.sleep(delay)

    # -- webhook configuration (`intellizap webhook`) ------------------------------------------

    async def set_webhook(
        self, instance: str, config: WebhookConfig, *, token: str | None = None
    ) -> None:
        """Point ``instance``'s webhook at ``config`` (idempotent: it replaces the previous)."""
        body = set_body(config, self._api_version)
        await self._request("POST", f"/webhook/set/{_path(instance)}", token, json=body)

    async def find_webhook(
        self, instance: str, *, token: str | None = None
    ) -> WebhookConfig | None:
        """``instance``'s webhook as Evolution stored it; None when it has none."""
        return parse_found(await self._request("GET", f"/webhook/find/{_path(instance)}", token))


def _path(value: str) -> str:
    return quote(value, safe="")


def _quoted_body(quote: Quote) -> dict[str, Any]:
    key: dict[str, Any] = {
        "id": quote.message_id,
        "remoteJid": quote.chat_jid,
        "fromMe": quote.from_me,
    }
    if quote.participant:
        key["participant"] = quote.participant
    body: dict[str, Any] = {"key": key}
    if quote.message:
        body["message"] = quote.message
    return body


def _group(item: Any) -> GroupMetadata | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    if not item["id"].endswith("@g.us"):
        return None
    subject = item.get("subject")
    return GroupMetadata(
        jid=item["id"], subject=subject if isinstance(subject, str) and subject else None
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _result(response: httpx.Response, path: str) -> Any:
    status = response.status_code
    body = _json(response)
    if status < 400:
        return body
    detail = _error_detail(body)
    if status >= 500 or status in _RETRYABLE_STATUS:
        retry_after = response.headers.get("retry-after", "")
        raise EvolutionUnavailable(
            f"Evolution API error {status} on {path}: {detail}",
            retry_after=float(retry_after) if retry_after.isdigit() else None,
        )
    if status in (401, 403):
        raise NotAuthorized(f"Evolution refused the API key ({status}) on {path}")
    if status == 404:
        raise InstanceNotFound(f"Evolution instance not found: {detail}")
    if status == 400 and _not_on_whatsapp(body):
        raise NotOnWhatsApp(f"not on WhatsApp: {detail}")
    raise BadRequest(f"Evolution API rejected the request ({status}): {detail}")


def _error_detail(body: Any) -> str:
    if isinstance(body, dict):
        response = body.get("response")
        if isinstance(response, dict) and "message" in response:
            return str(response["message"])[:300]
        if "message" in body:
            return str(body["message"])[:300]
    return "no details"


def _not_on_whatsapp(body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("response"), dict):
        return False
    messages = body["response"].get("message")
    return isinstance(messages, list) and any(
        isinstance(item, dict) and item.get("exists") is False for item in messages
    )


__all__ = [
    "EvolutionClient",
    "EvolutionError",
    "FoundMessage",
    "GroupMetadata",
    "MediaFile",
    "Quote",
]
