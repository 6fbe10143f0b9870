"""OpenAI-compatible LLM and Whisper calls, and the one rule for which key a tenant uses.

Works with OpenAI and any compatible server (``OPENAI_BASE_URL``). A tenant's own key
(``usuarios."key-openai"``) is always used when present; an invalid own key is a permanent error
and is **never** replaced by the platform key (the platform must not silently pay for it).
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import httpx2
import openai
from pydantic import SecretStr

from intellizap.logging import add_secret, get_logger
from intellizap.observability.llm import observe_llm_call
from intellizap.rate_limits import ProviderLimits, WaitTooLong, retry_after

log = get_logger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class KeyOwner(enum.StrEnum):
    """Who pays: stored in ``uso_tokens.chave``."""

    OWN = "propria"
    PLATFORM = "plataforma"


@dataclass(frozen=True, slots=True)
class ApiKey:
    secret: str = field(repr=False)
    owner: KeyOwner


class LlmError(Exception):
    """Base class; ``transient`` errors are retried later, the others are final. ``owner`` says
    whose key the call used, so the reason shown can say who has to act."""

    transient = False

    def __init__(self, message: str, owner: KeyOwner | None = None) -> None:
        super().__init__(message)
        self.owner = owner


class NoApiKey(LlmError):
    """Neither the tenant nor the platform has an OpenAI key."""


class InvalidApiKey(LlmError):
    """The provider refused the key (401/403): the tenant must fix theirs, or, for the platform
    key, the operator must fix ``OPENAI_API_KEY``."""


class OutOfCredit(LlmError):
    """The key's account has no credit or hit its spending limit (OpenAI's 429
    ``insufficient_quota``). Retried (not a rate limit: with backoff), since its owner may pay
    while the work is still worth doing."""

    transient = True


class RateLimited(LlmError):
    """The provider's rate limit (or our copy of it) has no room now: try again later. A
    throttle, not a failure: the job retries when told (``retry_after``), until its deadline."""

    transient = True
    throttled = True

    def __init__(
        self, message: str, retry_after: float | None, owner: KeyOwner | None = None
    ) -> None:
        super().__init__(message, owner)
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
    """One SDK client and one copy of the provider's rate limits per key (and model), created on
    first use; the least recently used are dropped beyond ``max_clients`` (a client closed, and
    its connections with it, once its last call ended).

    Every call first waits for room in the key's limits (see :mod:`intellizap.rate_limits`), up
    to ``max_wait`` seconds; beyond that it raises :class:`RateLimited` at once, so the job
    gives its worker slot back and is retried when there will be room. A ``429`` (the provider
    refused the request, so sending it again is safe) is sent again after the wait it asks for,
    within the same ``max_wait``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 120.0,
        max_wait: float = 30.0,
        max_clients: int = 256,
        connections: int = 100,
    ) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._max_wait = max_wait
        self._max_clients = max_clients
        # Every slot of a worker may call the same key at once (the platform key): beyond the
        # pool's idle connections each call would open a new one (a TLS handshake) and close it.
        # Idle ones are dropped after 2 s, before a server's own idle timeout (5 s for uvicorn
        # and Node) can close a connection a request is being sent on.
        self._pool_limits = httpx2.Limits(
            max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0
        )
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._limits: OrderedDict[tuple[str, str], ProviderLimits] = OrderedDict()

    @contextlib.asynccontextmanager
    async def _client(self, key: ApiKey) -> AsyncIterator[openai.AsyncOpenAI]:
        """The SDK client of ``key`` for one call. A client dropped beyond ``max_clients`` is
        closed (its connections with it) once no call is using it."""
        client = self._clients.get(key.secret)
        if client is None:
            # Retries are the job queue's business (durable, with backoff), not the SDK's.
            client = self._clients[key.secret] = _Client(
                openai.AsyncOpenAI(
                    api_key=key.secret,
                    base_url=self._base_url,
                    timeout=self._timeout,
                    max_retries=0,
                    http_client=openai.DefaultAsyncHttpxClient(limits=self._pool_limits),
                )
            )
        self._clients.move_to_end(key.secret)
        client.calls += 1
        try:
            while len(self._clients) > self._max_clients:
                _, dropped = self._clients.popitem(last=False)
                dropped.dropped = True
                if dropped.calls == 0:
                    await dropped.sdk.close()
            yield client.sdk
        finally:
            client.calls -= 1
            if client.dropped and client.calls == 0:
                await client.sdk.close()

    def limits(self, key: ApiKey, model: str) -> ProviderLimits:
        """This process's copy of the provider's limits for ``key`` and ``model``."""
        name = (key.secret, model)
        limits = self._limits.get(name)
        if limits is None:
            limits = self._limits[name] = ProviderLimits()
            while len(self._limits) > self._max_clients * 2:
                self._limits.popitem(last=False)
        self._limits.move_to_end(name)
        return limits

    async def _call(
        self, key: ApiKey, model: str, tokens: float, send: Callable[[], Awaitable[_Raw[T]]]
    ) -> T:
        limits = self.limits(key, model)
        deadline = time.monotonic() + self._max_wait
        for _ in range(_MAX_SENDS):
            try:
                permit = await limits.acquire(tokens, max_wait=deadline - time.monotonic())
            except WaitTooLong as exc:
                raise _rate_limited(key, exc.wait) from None
            answered: Mapping[str, str] | None = None
            throttled = False
            try:
                raw = await send()
                answered = raw.headers
                return raw.parse()
            except openai.APIStatusError as exc:
                answered = exc.response.headers
                throttled = exc.status_code == 429 and _code(exc) != "insufficient_quota"
                if not throttled:
                    raise _translate(exc, key) from exc
            except openai.APIError as exc:
                raise _translate(exc, key) from exc
            finally:
                delay = limits.finish(permit, answered, throttled=throttled)
            log.info("LLM rate limited; waiting", chave=key.owner.value, model=model, delay=delay)
        raise _rate_limited(key, max(0.0, limits.blocked_until - time.monotonic()))

    async def transcribe(
        self, key: ApiKey, *, audio: bytes, filename: str, model: str, language: str = "pt"
    ) -> str:
        """Whisper: the text of ``audio``. The provider checks the file *name's* extension."""
        async with self._client(key) as client:
            with observe_llm_call(kind="transcricao", model=model, key_owner=key.owner.value):
                result = await self._call(
                    key,
                    model,
                    0,
                    lambda: client.audio.transcriptions.with_raw_response.create(
                        model=model, file=(filename, audio), language=language
                    ),
                )
        return result.text.strip()

    async def complete(
        self,
        key: ApiKey,
        *,
        model: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        input_tokens: int | None = None,
    ) -> Completion:
        """One chat completion. ``input_tokens`` (the prompt's size, when the caller counted it)
        plus ``max_tokens`` is what the provider's token limit is charged up front."""
        prompt = input_tokens if input_tokens is not None else _rough_tokens(messages)
        async with self._client(key) as client:
            with observe_llm_call(kind="resumo", model=model, key_owner=key.owner.value) as call:
                response = await self._call(
                    key,
                    model,
                    prompt + max_tokens,
                    lambda: client.chat.completions.with_raw_response.create(
                        model=model,
                        messages=messages,  # type: ignore[arg-type]
                        max_tokens=max_tokens,
                        temperature=0.2,
                    ),
                )
                usage = response.usage
                call.tokens(
                    usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0
                )
        return Completion(
            text=(response.choices[0].message.content or "").strip() if response.choices else "",
            model=response.model or model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.sdk.close()
        self._clients.clear()


@dataclass(eq=False, slots=True)
class _Client:
    """An SDK client of :class:`Llm`, the calls using it, and whether it was dropped."""

    sdk: openai.AsyncOpenAI
    calls: int = 0
    dropped: bool = False


#: Sends of one call (the first and the re-sends after a 429) before giving the job back.
_MAX_SENDS = 8


class _Raw(Protocol[T_co]):
    """What the SDK's ``with_raw_response`` calls return."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def parse(self) -> T_co: ...


def _rough_tokens(messages: list[dict[str, str]]) -> int:
    # About four characters a token, plus a few per message: only when the caller did not count.
    return sum(len(message.get("content") or "") // 4 + 4 for message in messages)


def _rate_limited(key: ApiKey, wait: float) -> RateLimited:
    return RateLimited(
        f"rate limited on {_whose(key)}: room in {wait:.0f}s", retry_after=wait, owner=key.owner
    )


def _whose(key: ApiKey) -> str:
    return "the tenant's own OpenAI key" if key.owner is KeyOwner.OWN else "OPENAI_API_KEY"


def _translate(exc: openai.APIError, key: ApiKey) -> LlmError:
    whose, owner = _whose(key), key.owner
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return InvalidApiKey(
            f"{whose} was refused by the provider ({exc.status_code}): update it", owner
        )
    if isinstance(exc, openai.RateLimitError):
        if _code(exc) == "insufficient_quota":
            return OutOfCredit(
                f"{whose} has no credit left at the provider: {_message(exc)}", owner
            )
        return RateLimited(f"rate limited on {whose}", retry_after(exc.response.headers), owner)
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        return LlmUnavailable(f"LLM provider unreachable: {type(exc).__name__}", owner)
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return LlmUnavailable(f"LLM provider error {exc.status_code}", owner)
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else "?"
    return LlmRejected(f"LLM provider rejected the request ({status}): {_message(exc)}", owner)


def _code(exc: openai.APIError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("code"), str):
            return str(inner["code"])
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else None


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:300]
    return str(exc.message)[:300]


#: Said when the platform's own key or account is at fault: the customer has nothing to change.
_NOT_YOUR_ACCOUNT = "um problema do serviço, não da sua conta"


def tenant_reason(exc: LlmError) -> str:
    """What the tenant is told (pt-BR) when calls keep failing with ``exc``: who has to act
    depends on whose key it was (a refused platform key is the operator's problem)."""
    own = exc.owner is KeyOwner.OWN
    match exc:
        case InvalidApiKey():
            if own:
                return "chave OpenAI do cliente recusada pelo provedor; atualize a chave"
            return f"a chave de IA da plataforma foi recusada pelo provedor ({_NOT_YOUR_ACCOUNT})"
        case OutOfCredit():
            if own:
                return (
                    "a conta OpenAI do cliente está sem créditos ou no limite de gastos; "
                    "verifique o faturamento na OpenAI"
                )
            return f"o serviço de IA da plataforma está sem créditos ({_NOT_YOUR_ACCOUNT})"
        case RateLimited():
            if own:
                return (
                    "limite de requisições da chave OpenAI do cliente atingido (limite de taxa "
                    "do provedor); verifique os limites da conta na OpenAI"
                )
            return "limite de requisições do provedor de IA atingido (limite de taxa)"
        case LlmUnavailable():
            return "o provedor de IA ficou indisponível"
        case NoApiKey():
            return "nenhuma chave OpenAI configurada"
    return "o provedor de IA recusou o pedido"
