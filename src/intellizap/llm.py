"""OpenAI-compatible LLM and Whisper calls, and the one rule for which key a tenant uses.

Works with OpenAI and any compatible server (``OPENAI_BASE_URL``). A tenant's own key
(``usuarios."key-openai"``) is always used when present; an invalid own key is a permanent error
and is **never** replaced by the platform key (the platform must not silently pay for it).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import openai
from pydantic import SecretStr

from intellizap.logging import add_secret


class KeyOwner(enum.StrEnum):
    """Who pays: stored in ``uso_tokens.chave``."""

    OWN = "propria"
    PLATFORM = "plataforma"


@dataclass(frozen=True, slots=True)
class ApiKey:
    secret: str = field(repr=False)
    owner: KeyOwner


class LlmError(Exception):
    """Base class; ``transient`` errors are retried later, the others are final."""

    transient = False


class NoApiKey(LlmError):
    """Neither the tenant nor the platform has an OpenAI key."""


class InvalidApiKey(LlmError):
    """The provider refused the key (401/403)."""


class RateLimited(LlmError):
    transient = True

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LlmUnavailable(LlmError):
    """Timeouts, connection errors and 5xx."""

    transient = True


class LlmRejected(LlmError):
    """The provider rejected the request itself (bad model name, bad file…)."""


def choose_key(tenant_key: str | None, platform_key: SecretStr | None) -> ApiKey:
    """The tenant's own key when it has one, else the platform's."""
    if tenant_key and tenant_key.strip():
        add_secret(tenant_key.strip())
        return ApiKey(tenant_key.strip(), KeyOwner.OWN)
    if platform_key is not None and platform_key.get_secret_value():
        return ApiKey(platform_key.get_secret_value(), KeyOwner.PLATFORM)
    raise NoApiKey("no OpenAI key: set OPENAI_API_KEY or the tenant's key-openai")


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    input_tokens: int
    output_tokens: int


class Llm:
    """One SDK client per key (each keeps its connection pool), created on first use."""

    def __init__(self, base_url: str, *, timeout: float = 120.0, max_clients: int = 256) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._max_clients = max_clients
        self._clients: OrderedDict[str, openai.AsyncOpenAI] = OrderedDict()

    def _client(self, key: ApiKey) -> openai.AsyncOpenAI:
        client = self._clients.get(key.secret)
        if client is None:
            # Retries are the job queue's business (durable, with backoff), not the SDK's.
            client = openai.AsyncOpenAI(
                api_key=key.secret, base_url=self._base_url, timeout=self._timeout, max_retries=0
            )
            self._clients[key.secret] = client
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
        self._clients.move_to_end(key.secret)
        return client

    async def transcribe(
        self, key: ApiKey, *, audio: bytes, filename: str, model: str, language: str = "pt"
    ) -> str:
        """Whisper: the text of ``audio``. The provider checks the file *name's* extension."""
        try:
            result = await self._client(key).audio.transcriptions.create(
                model=model, file=(filename, audio), language=language
            )
        except openai.APIError as exc:
            raise _translate(exc, key) from exc
        return result.text.strip()

    async def complete(
        self, key: ApiKey, *, model: str, messages: list[dict[str, str]], max_tokens: int
    ) -> Completion:
        try:
            response = await self._client(key).chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=0.2,
            )
        except openai.APIError as exc:
            raise _translate(exc, key) from exc
        usage = response.usage
        return Completion(
            text=(response.choices[0].message.content or "").strip() if response.choices else "",
            model=response.model or model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


def _translate(exc: openai.APIError, key: ApiKey) -> LlmError:
    whose = "the tenant's own OpenAI key" if key.owner is KeyOwner.OWN else "OPENAI_API_KEY"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return InvalidApiKey(f"{whose} was refused by the provider ({exc.status_code}): update it")
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(f"rate limited on {whose}", _retry_after(exc.response.headers))
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return LlmUnavailable(f"LLM provider unreachable: {type(exc).__name__}")
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return LlmUnavailable(f"LLM provider error {exc.status_code}")
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else "?"
    return LlmRejected(f"LLM provider rejected the request ({status}): {_message(exc)}")


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:300]
    return str(exc.message)[:300]
