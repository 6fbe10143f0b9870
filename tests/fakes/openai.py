"""A fake OpenAI API (Whisper transcriptions + chat completions): a real HTTP server.

with FakeOpenAI.running() as ai:
    settings = make_settings(url, openai_base_url=ai.url)   # ai.url ends with /v1
    ai.transcript = "bom dia"
    ai.fail_next("/audio/", 429, retry_after=1)
    ai.throttle(requests_per_second=5)   # like OpenAI: 429s, x-ratelimit-* headers, Retry-After
    ai.latency = 2.5                     # seconds to answer a request it accepted
    ai.out_of_credit_keys = {"sk-…"}     # 429 insufficient_quota

Throttling works like OpenAI's limits: per key (and endpoint), a bucket of ``burst`` requests
(and, optionally, tokens: prompt characters / 4 plus ``max_tokens``) refilled continuously,
charged when a request arrives. Every answer carries ``x-ratelimit-limit-*``,
``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` (``"200ms"``, ``"1s"``, ``"6m0s"``); a
refused request gets 429 with ``Retry-After`` and ``retry-after-ms``.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import math
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from tests.fakes._server import FakeServer, Gate, Handler, RecordedRequest
from tests.fakes.audio import duration_of
from tests.fakes.openai_limits import Throttle, reset_text

__all__ = ["Completion", "FakeOpenAI", "Gate", "RecordedRequest", "Transcription"]

MAX_UPLOAD_BYTES = 26_214_400
# What OpenAI lists as supported. It nevertheless rejects ``.oga`` (the name Evolution gives voice
# notes), so the backend must rename it; the fake reproduces that.
LISTED_FORMATS = ["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"]
ACCEPTED_FORMATS = set(LISTED_FORMATS) - {"oga"}


@dataclass(frozen=True)
class Transcription:
    api_key: str | None
    model: str | None
    language: str | None
    filename: str | None
    size: int
    content_type: str | None
    response_format: str | None = None
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Completion:
    api_key: str | None
    model: str | None
    messages: list[dict[str, Any]]
    max_tokens: int | None
    body: dict[str, Any] = field(default_factory=dict, repr=False)


def openai_error(
    status: int, message: str, type_: str = "invalid_request_error", code: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JSONResponse(body, status)


def _text_length(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text", "")) for part in content if isinstance(part, dict))
    return total


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


class FakeOpenAI(FakeServer):
    url_suffix = "/v1"

    def __init__(self) -> None:
        self.transcript: str | Callable[[str, bytes], str] = "Olá, isto é um teste de transcrição."
        self.completion: str | Callable[[list[dict[str, Any]]], str] = "Resumo de teste."
        self.duration: float | None = None  # verbose_json duration; None: ffprobe's
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.invalid_keys: set[str] = set()
        self.out_of_credit_keys: set[str] = set()
        self.latency = 0.0
        self._throttle: Throttle | None = None
        self._transcriptions: list[Transcription] = []
        self._completions: list[Completion] = []
        super().__init__()

    def throttle(
        self,
        requests_per_second: float,
        *,
        burst: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        """Limit each key to ``requests_per_second`` (bursts of ``burst``, default one second's
        worth) and optionally ``tokens_per_minute``, the way OpenAI does (see the module doc)."""
        with self.lock:
            self._throttle = Throttle(
                requests_per_second, burst or requests_per_second, tokens_per_minute
            )

    @property
    def throttled(self) -> tuple[int, int]:
        """(admitted, refused with 429) since :meth:`throttle`."""
        with self.lock:
            limit = self._throttle
            return (limit.admitted, limit.refused) if limit else (0, 0)

    def _admit(self, key: str | None, path: str, tokens: int) -> Response | dict[str, str]:
        """On arrival: a 429 when the key's limit has no room, else the headers of the answer."""
        with self.lock:
            limit = self._throttle
            if limit is None:
                return {}
            wait, by_tokens, headers = limit.admit(key, path, tokens, time.monotonic())
        if wait <= 0:
            return headers
        kind = "tokens" if by_tokens else "requests"
        message = (
            f"Rate limit reached for gpt-4o-mini in organization org-fake on {kind}: "
            f"Please try again in {reset_text(wait)}. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )
        body = {
            "error": {
                "message": message,
                "type": kind,
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
        headers.update(
            {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
        )
        headers["x-request-id"] = "req_" + secrets.token_hex(16)
        return JSONResponse(body, 429, headers=headers)

    def _out_of_credit(self, key: str | None) -> Response | None:
        if key not in self.out_of_credit_keys:
            return None
        message = (
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors."
        )
        return openai_error(429, message, type_="insufficient_quota", code="insufficient_quota")

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/audio/transcriptions", self._transcribe),
            ("POST", "/v1/chat/completions", self._complete),
        ]

    @property
    def transcriptions(self) -> list[Transcription]:
        with self.lock:
            return list(self._transcriptions)

    @property
    def completions(self) -> list[Completion]:
        with self.lock:
            return list(self._completions)

    # --- conventions -------------------------------------------------------------------------
    def request_key(self, request: Request) -> str | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return key.strip() or None if scheme.lower() == "bearer" else None

    def check_auth(self, request: Request, key: str | None) -> Response | None:
        if not key:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key in self.invalid_keys:
            masked = f"{key[:3]}...{key[-4:]}"
            return openai_error(
                401, f"Incorrect API key provided: {masked}.", code="invalid_api_key"
            )
        return None

    def error_body(self, status: int) -> Any:
        if status == 429:
            message = (
                "Rate limit reached for requests in organization org-fake on requests per min "
                "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."
            )
            return {
                "error": {
                    "message": message,
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            }
        if status >= 500:
            message = "The server had an error while processing your request. Sorry about that!"
            return {
                "error": {"message": message, "type": "server_error", "param": None, "code": None}
            }
        phrase = HTTPStatus(status).phrase
        return {
            "error": {
                "message": phrase,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }

    def failure_headers(self, status: int, retry_after: int | None) -> dict[str, str]:
        return {"x-request-id": "req_" + secrets.token_hex(16)}

    # --- endpoints -----------------------------------------------------------------------------
    async def _transcribe(self, request: Request, raw: bytes) -> Response:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return openai_error(400, "Could not parse multipart form")
        fields, files = parse_multipart(content_type, raw)
        if "file" not in files:
            return openai_error(400, "you must provide a file")
        filename, file_type, data = files["file"]
        model = fields.get("model")
        response_format = fields.get("response_format")
        record = Transcription(
            api_key=self.request_key(request),
            model=model,
            language=fields.get("language"),
            filename=filename,
            size=len(data),
            content_type=file_type,
            response_format=response_format,
            data=data,
        )
        with self.lock:
            self._transcriptions.append(record)
        refused = self._out_of_credit(record.api_key)
        if refused is not None:
            return refused
        admitted = self._admit(record.api_key, request.url.path, 0)
        if isinstance(admitted, Response):
            return admitted
        if self.latency:
            await asyncio.sleep(self.latency)
        response = await self._transcription_answer(fields, filename, data, model, response_format)
        response.headers.update(admitted)
        return response

    async def _transcription_answer(
        self,
        fields: dict[str, str],
        filename: str | None,
        data: bytes,
        model: str | None,
        response_format: str | None,
    ) -> Response:
        if not model:
            return openai_error(400, "you must provide a model parameter")
        if len(data) > self.max_upload_bytes:
            return openai_error(
                413, f"Maximum content size limit ({self.max_upload_bytes}) exceeded"
            )
        extension = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
        if extension not in ACCEPTED_FORMATS:
            return openai_error(400, f"Invalid file format. Supported formats: {LISTED_FORMATS}")
        transcript = self.transcript
        text = transcript(filename or "", data) if callable(transcript) else transcript
        if response_format in {"text", "srt", "vtt"}:
            return PlainTextResponse(text)
        if response_format == "verbose_json":
            duration = self.duration
            if duration is None:
                try:
                    duration = await anyio.to_thread.run_sync(duration_of, data)
                except (OSError, ValueError, KeyError, subprocess.SubprocessError):
                    duration = 0.0
            body = {
                "task": "transcribe",
                "language": fields.get("language") or "portuguese",
                "duration": duration,
                "text": text,
                "segments": [],
            }
            return JSONResponse(body)
        return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": 1}})

    async def _complete(self, request: Request, raw: bytes) -> Response:
        try:
            body = json.loads(raw)
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        messages = body.get("messages")
        model = body.get("model")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        record = Completion(self.request_key(request), model, messages or [], max_tokens, body)
        with self.lock:
            self._completions.append(record)
        if not model:
            return openai_error(400, "you must provide a model parameter")
        if not isinstance(messages, list) or not messages:
            return openai_error(400, "[] is too short - 'messages'")
        refused = self._out_of_credit(record.api_key)
        if refused is not None:
            return refused
        prompt_tokens = _tokens(_text_length(messages))
        # Like OpenAI, the token limit is charged the prompt plus the maximum output, up front.
        charged = prompt_tokens + (max_tokens if isinstance(max_tokens, int) else 4096)
        admitted = self._admit(record.api_key, request.url.path, charged)
        if isinstance(admitted, Response):
            return admitted
        if self.latency:
            await asyncio.sleep(self.latency)
        completion = self.completion
        content = completion(messages) if callable(completion) else completion
        completion_tokens = _tokens(len(content))
        return JSONResponse(
            {
                "id": "chatcmpl-" + secrets.token_hex(12),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "system_fingerprint": "fp_fake",
            },
            headers=admitted,
        )


def parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, str], dict[str, tuple[str | None, str | None, bytes]]]:
    """Form fields and files (name -> (filename, content type, bytes)) of a multipart body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str | None, str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            part_type = part.get("content-type")
            files[name] = (filename, None if part_type is None else str(part_type), data)
        else:
            fields[name] = data.decode()
    return fields, files
