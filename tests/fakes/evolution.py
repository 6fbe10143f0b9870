"""A fake Evolution API (WhatsApp gateway): a real HTTP server with the REST shapes of v2 (and v1 bodies).

    with FakeEvolution.running() as evo:
        evo.add_media("ABC", voice_note(3))
        ...  # point the backend at evo.url
        assert evo.sent[0].text == "..."

Awkward like the real one around sends: it can fail or hang *after* it sent the message
(``fail_after_sending``, ``hold_after_sending``), lose a request it never acted on
(``lose_next_send``), answer slowly (``delay``), keep its sends for ``findMessages`` (unless
``stores_messages`` is off, as with Evolution's ``DATABASE_SAVE_DATA_NEW_MESSAGE=false``), and
report each send back as a ``send.message`` webhook (``echo_to``), possibly twice.

See /work/shared/evolution/reference.md §4 and tests/fixtures/evolution/rest.*.json.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
import secrets
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes._server import FakeServer, Gate, Handler, RecordedRequest
from tests.fakes.evolution_webhooks import WebhookEndpoints
from tests.fakes.evolution_witnesses import SendWitnesses

__all__ = [
    "NOT_ON_WHATSAPP",
    "FakeEvolution",
    "Gate",
    "Media",
    "RecordedRequest",
    "SentText",
    "not_on_whatsapp",
]

FIXTURES = Path(__file__).parent.parent / "fixtures" / "evolution"
INSTANCE_ID = "7c1f2e4a-9b3d-4e8f-a2c5-1d6e8f9a0b3c"


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def not_on_whatsapp(number: str) -> dict[str, Any]:
    """The 400 body Evolution returns when ``number`` is not on WhatsApp."""
    digits = re.sub(r"\D", "", number.split("@")[0])
    return {
        "status": 400,
        "error": "Bad Request",
        "response": {
            "message": [{"jid": f"{digits}@s.whatsapp.net", "exists": False, "number": digits}]
        },
    }


NOT_ON_WHATSAPP: dict[str, Any] = _fixture("rest.error.400.not-on-whatsapp.json")


def error(status: int, message: Any) -> JSONResponse:
    body = {"status": status, "error": HTTPStatus(status).phrase, "response": {"message": message}}
    return JSONResponse(body, status)


def to_jid(number: str) -> str:
    """Evolution's ``createJid`` in short: full JIDs kept; long ids / ``-`` ids are groups."""
    if "@" in number:
        return number
    digits = re.sub(r"[\s+()]", "", number)
    if "-" in digits or len(digits) >= 18:
        return f"{digits}@g.us"
    return f"{digits}@s.whatsapp.net"


@dataclass(frozen=True)
class SentText:
    instance: str
    number: str
    text: str
    quoted_id: str | None
    apikey: str | None
    at: float
    body: dict[str, Any]

    @property
    def mentioned(self) -> list[str]:
        """The numbers the send asked WhatsApp to notify (v2 ``mentioned``, v1
        ``options.mentions.mentioned``)."""
        v1 = (self.body.get("options") or {}).get("mentions") or {}
        return list(self.body.get("mentioned") or v1.get("mentioned") or [])


@dataclass(frozen=True)
class _AfterSend:
    """What the next send does once it has (or has not) acted."""

    kind: str  # "fail": acts, then answers ``status``; "hold": acts, then waits for the gate;
    # "lose": waits for the gate, then answers 502 without ever acting
    status: int = 500
    gate: Gate | None = None


@dataclass(frozen=True)
class Media:
    data: bytes
    mimetype: str
    media_type: str


class FakeEvolution(WebhookEndpoints, SendWitnesses, FakeServer):
    def __init__(self) -> None:
        self.valid_keys: set[str] = set()  # empty: any non-empty key is accepted
        self.instances: set[str] = set()  # empty: every instance exists
        self.groups: dict[str, list[dict[str, Any]]] = {}  # per instance; default below
        self.default_groups: list[dict[str, Any]] = _fixture("rest.fetchAllGroups.response.json")
        self.media: dict[str, Media] = {}
        self._sent: list[SentText] = []
        self._downloads: list[dict[str, Any]] = []
        self._group_calls: list[dict[str, Any]] = []
        self._after_send: list[_AfterSend] = []
        self._init_witnesses()
        # Webhook configuration (/webhook/set, /webhook/find): tests/fakes/evolution_webhooks.py
        self.api_version = 2  # 1: Evolution 1.8's flat snake_case bodies
        self.keeps_webhook_headers = True  # False: v2 older than 2.2, which drops them
        self.instance_tokens: dict[str, str] = {}  # token -> the only instance it works for
        self.webhooks: dict[str, dict[str, Any]] = {}
        super().__init__()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/message/sendText/{instance}", self._send_text),
            ("POST", "/chat/getBase64FromMediaMessage/{instance}", self._get_base64),
            ("POST", "/chat/findMessages/{instance}", self._find_messages),
            ("GET", "/group/fetchAllGroups/{instance}", self._fetch_all_groups),
            ("GET", "/group/findGroupInfos/{instance}", self._find_group_infos),
            *self.webhook_routes(),
        ]

    # --- test API ------------------------------------------------------------------------------
    def add_media(
        self,
        message_id: str,
        data: bytes,
        mimetype: str = "audio/ogg; codecs=opus",
        media_type: str | None = None,
    ) -> None:
        if media_type is None:
            kind = mimetype.split("/")[0]
            media_type = (
                f"{kind}Message" if kind in {"audio", "image", "video"} else "documentMessage"
            )
        with self.lock:
            self.media[message_id] = Media(data, mimetype, media_type)

    @property
    def sent(self) -> list[SentText]:
        with self.lock:
            return list(self._sent)

    def fail_after_sending(self, status: int = 500, times: int = 1) -> None:
        """The next ``times`` sends go out (recorded, stored, echoed), then answer ``status``."""
        with self.lock:
            self._after_send += [_AfterSend("fail", status=status)] * times

    def hold_after_sending(self) -> Gate:
        """The next send goes out, then its answer waits for ``gate.release()`` (a client
        timeout, or a killed client, never learns that it went out)."""
        gate = self._new_gate()
        with self.lock:
            self._after_send.append(_AfterSend("hold", gate=gate))
        return gate

    def lose_next_send(self) -> Gate:
        """The next send waits for ``gate.release()``, then answers 502 without having acted
        (a proxy whose upstream never got it)."""
        gate = self._new_gate()
        with self.lock:
            self._after_send.append(_AfterSend("lose", gate=gate))
        return gate

    def sent_to(self, number: str) -> list[SentText]:
        return [item for item in self.sent if item.number == number]

    @property
    def downloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._downloads)

    @property
    def group_calls(self) -> list[dict[str, Any]]:
        """fetchAllGroups / findGroupInfos calls: ``{path, instance, query, apikey}``."""
        with self.lock:
            return list(self._group_calls)

    def groups_of(self, instance: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.groups.get(instance, self.default_groups))

    # --- conventions -------------------------------------------------------------------------
    def request_key(self, request: Request) -> str | None:
        return request.headers.get("apikey")

    def error_body(self, status: int) -> Any:
        phrase = HTTPStatus(status).phrase
        return {"status": status, "error": phrase, "response": {"message": [phrase]}}

    def check_auth(self, request: Request, key: str | None) -> Response | None:
        if not key or (self.valid_keys and key not in self.valid_keys):
            return error(401, "Unauthorized")
        instance = request.path_params["instance"]
        if self.instances and instance not in self.instances:
            return error(404, [f'The "{instance}" instance does not exist'])
        return None

    # --- endpoints -----------------------------------------------------------------------------
    async def _send_text(self, request: Request, raw: bytes) -> Response:
        body = _json_object(raw)
        if body is None:
            return error(400, ['instance requires property "number"'])
        options = body.get("options") or {}
        text = body.get("text")
        if text is None and isinstance(body.get("textMessage"), dict):  # v1
            text = body["textMessage"].get("text")
        quoted = body.get("quoted") or options.get("quoted") or {}
        number = body.get("number")
        if not isinstance(number, str) or not number:
            return error(400, ['instance requires property "number"'])
        if not isinstance(text, str) or not text.strip():
            return error(400, ["Text is required"])
        mentioned = body.get("mentioned", (options.get("mentions") or {}).get("mentioned", []))
        if not isinstance(mentioned, list) or not all(
            isinstance(n, str) and n.isdigit() for n in mentioned
        ):
            return error(400, ['instance.mentioned[0] does not match pattern "^\\d+"'])
        instance = request.path_params["instance"]
        with self.lock:
            after = self._after_send.pop(0) if self._after_send else None
        if after is not None and after.kind == "lose":
            assert after.gate is not None
            await _wait(after.gate)
            return error(502, ["Bad Gateway"])
        sent = SentText(
            instance=instance,
            number=number,
            text=text,
            quoted_id=(quoted.get("key") or {}).get("id"),
            apikey=self.request_key(request),
            at=time.monotonic(),
            body=body,
        )
        now = int(time.time())
        content: dict[str, Any] = {"conversation": text}
        if quoted:  # Baileys turns a quoting text into an extendedTextMessage
            content = {
                "extendedTextMessage": {
                    "text": text,
                    "contextInfo": {"stanzaId": (quoted.get("key") or {}).get("id")},
                }
            }
        response = {
            "key": {
                "remoteJid": to_jid(number),
                "fromMe": True,
                "id": "3EB0" + secrets.token_hex(9).upper(),
            },
            "pushName": "Você",
            "status": "PENDING",
            "message": content,
            "contextInfo": {
                "mentionedJid": [f"{n}@s.whatsapp.net" for n in mentioned],
                "groupMentions": [],
                "ephemeralSettingTimestamp": {"low": now - 172800, "high": 0, "unsigned": False},
                "disappearingMode": {"initiator": 0},
            },
            "messageType": next(iter(content)),
            "messageTimestamp": now,
            "instanceId": INSTANCE_ID,
            "source": "web",
        }
        with self.lock:
            self._sent.append(sent)
        self._witness(instance, response)
        if after is not None and after.kind == "fail":
            return error(after.status, [HTTPStatus(after.status).phrase])
        if after is not None and after.kind == "hold":
            assert after.gate is not None
            await _wait(after.gate)
        return JSONResponse(response, 201)

    def _new_gate(self) -> Gate:
        # Listed with the request gates so that stopping the server releases it, under a path
        # no request has, so that it holds only where the send handler waits on it.
        gate = Gate("\x00send-handler")
        with self.lock:
            self._gates.append(gate)
        return gate

    async def _get_base64(self, request: Request, raw: bytes) -> Response:
        body = _json_object(raw) or {}
        instance = request.path_params["instance"]
        with self.lock:
            self._downloads.append(
                {"instance": instance, "body": body, "apikey": self.request_key(request)}
            )
        message = body.get("message") or {}
        message_id = (message.get("key") or {}).get("id")
        with self.lock:
            media = self.media.get(message_id) if isinstance(message_id, str) else None
        if media is None:
            return error(400, ["Message not found"])
        size = len(media.data)
        extension = _extension(media.mimetype)
        return JSONResponse(
            {
                "mediaType": media.media_type,
                "fileName": f"{message_id}.{extension}",
                "size": {
                    "fileLength": {"low": size & 0xFFFFFFFF, "high": size >> 32, "unsigned": True}
                },
                "mimetype": media.mimetype,
                "base64": base64.b64encode(media.data).decode(),
                "buffer": None,
            },
            201,
        )

    def _record_group_call(self, request: Request) -> str:
        instance: str = request.path_params["instance"]
        call = {
            "path": request.url.path,
            "instance": instance,
            "query": dict(request.query_params),
            "apikey": self.request_key(request),
        }
        with self.lock:
            self._group_calls.append(call)
        return instance

    async def _fetch_all_groups(self, request: Request, raw: bytes) -> Response:
        instance = self._record_group_call(request)
        flag = request.query_params.get("getParticipants")
        if flag not in {"true", "false"}:
            return error(400, ['instance requires property "getParticipants"'])
        groups = self.groups_of(instance)
        if flag == "false":
            for group in groups:
                group.pop("participants", None)
        return JSONResponse(groups, 200)

    async def _find_group_infos(self, request: Request, raw: bytes) -> Response:
        instance = self._record_group_call(request)
        jid = request.query_params.get("groupJid")
        if not jid:
            return error(400, ['instance requires property "groupJid"'])
        if "@" not in jid:
            jid += "@g.us"
        for group in self.groups_of(instance):
            if group.get("id") == jid:
                return JSONResponse(group, 200)
        return error(400, ["item-not-found"])


async def _wait(gate: Gate) -> None:
    gate.arrived.set()
    while not gate.is_set():  # noqa: ASYNC110 - a threading.Event set by the test thread
        await asyncio.sleep(0.01)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _extension(mimetype: str) -> str:
    base = mimetype.split(";")[0].strip().lower()
    known = {"audio/ogg": "oga", "audio/mpeg": "mpga", "audio/mp4": "m4a", "image/jpeg": "jpeg"}
    return known.get(base, base.split("/")[-1])
