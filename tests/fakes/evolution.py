"""A fake Evolution API (WhatsApp gateway): a real HTTP server with the REST shapes of v2 (and v1 bodies).

    with FakeEvolution.running() as evo:
        evo.add_media("ABC", voice_note(3))
        ...  # point the backend at evo.url
        assert evo.sent[0].text == "..."

See /work/shared/evolution/reference.md §4 and tests/fixtures/evolution/rest.*.json.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Media:
    data: bytes
    mimetype: str
    media_type: str


class FakeEvolution(WebhookEndpoints, FakeServer):
    def __init__(self) -> None:
        self.valid_keys: set[str] = set()  # empty: any non-empty key is accepted
        self.instances: set[str] = set()  # empty: every instance exists
        self.groups: dict[str, list[dict[str, Any]]] = {}  # per instance; default below
        self.default_groups: list[dict[str, Any]] = _fixture("rest.fetchAllGroups.response.json")
        self.media: dict[str, Media] = {}
        self._sent: list[SentText] = []
        self._downloads: list[dict[str, Any]] = []
        self._group_calls: list[dict[str, Any]] = []
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
        instance = request.path_params["instance"]
        sent = SentText(
            instance=instance,
            number=number,
            text=text,
            quoted_id=(quoted.get("key") or {}).get("id"),
            apikey=self.request_key(request),
            at=time.monotonic(),
            body=body,
        )
        with self.lock:
            self._sent.append(sent)
        now = int(time.time())
        response = {
            "key": {
                "remoteJid": to_jid(number),
                "fromMe": True,
                "id": "3EB0" + secrets.token_hex(9).upper(),
            },
            "pushName": "Você",
            "status": "PENDING",
            "message": {"conversation": text},
            "contextInfo": {
                "mentionedJid": [],
                "groupMentions": [],
                "ephemeralSettingTimestamp": {"low": now - 172800, "high": 0, "unsigned": False},
                "disappearingMode": {"initiator": 0},
            },
            "messageType": "conversation",
            "messageTimestamp": now,
            "instanceId": INSTANCE_ID,
            "source": "web",
        }
        return JSONResponse(response, 201)

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
