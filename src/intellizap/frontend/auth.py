"""Who is calling: verification of the access tokens Supabase Auth gives the frontend's users.

Supabase signs them in one of two ways (its "JWT signing keys" guide): the legacy shared secret
(HS256, ``SUPABASE_JWT_SECRET``) or an asymmetric signing key (ES256/RS256) whose public half is
published at ``{SUPABASE_URL}/auth/v1/.well-known/jwks.json``. Both are accepted when configured;
the token's header says which one signed it. The caller is the token's ``sub``, which is
``usuarios.auth_id``; the audience must be ``authenticated`` (the anon and service-role keys
have no user and are refused).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import jwt

from intellizap.logging import get_logger
from intellizap.settings import Settings

log = get_logger(__name__)

AUDIENCE = "authenticated"
LEEWAY_SECONDS = 30
ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "RS256"})
JWKS_PATH = "/auth/v1/.well-known/jwks.json"
JWKS_MAX_AGE_SECONDS = 600.0
"""Signing keys are rotated rarely, and a token signed by a key we have not seen triggers a
refresh anyway (at most once per ``JWKS_MIN_REFETCH_SECONDS``)."""
JWKS_MIN_REFETCH_SECONDS = 30.0


class InvalidToken(Exception):
    """The request carries no usable access token; the message says why (never the token)."""


class TokenVerificationUnavailable(Exception):
    """The signing keys could not be fetched from Supabase; the caller may retry."""


class SupabaseTokens:
    """Verifies Supabase access tokens and returns the user id (``sub``) they were issued to."""

    def __init__(self, settings: Settings) -> None:
        self._secret = (
            settings.supabase_jwt_secret.get_secret_value()
            if settings.supabase_jwt_secret
            else None
        )
        self._jwks_url = settings.supabase_url + JWKS_PATH if settings.supabase_url else None
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._refresh = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self._secret is not None or self._jwks_url is not None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def user_id(self, token: str) -> uuid.UUID:
        """The Supabase user the token was issued to. Raises :class:`InvalidToken`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256":
            if self._secret is None:
                raise InvalidToken(
                    "HS256 tokens are not accepted: SUPABASE_JWT_SECRET is not configured"
                )
            key = self._secret
        elif algorithm in ASYMMETRIC_ALGORITHMS:
            key = await self._signing_key(header.get("kid"))
            if key.algorithm_name != algorithm:
                raise InvalidToken("the token's algorithm does not match its signing key")
        else:
            raise InvalidToken(f"unsupported token algorithm {str(algorithm)[:16]!r}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired: refresh the session") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(
                f"the token is not a signed-in user's (audience must be {AUDIENCE!r})"
            ) from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token was refused: {_reason(exc)}") from None
        try:
            return uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise InvalidToken("the token's subject is not a user id") from None

    async def _signing_key(self, key_id: object) -> jwt.PyJWK:
        if self._jwks_url is None:
            raise InvalidToken(
                "tokens signed with asymmetric keys are not accepted: SUPABASE_URL is not "
                "configured"
            )
        if not isinstance(key_id, str):
            raise InvalidToken("the token names no signing key (kid)")
        stale = time.monotonic() - self._fetched_at > JWKS_MAX_AGE_SECONDS
        if stale or key_id not in self._keys:
            await self._refresh_keys(self._jwks_url)
        key = self._keys.get(key_id)
        if key is not None:
            return key
        if self._fetched_at == float("-inf"):
            raise TokenVerificationUnavailable(
                "Supabase's signing keys could not be fetched; retry later"
            )
        raise InvalidToken("the token was signed by a key this project does not publish")

    async def _refresh_keys(self, url: str) -> None:
        """Fetch the published keys, at most once per ``JWKS_MIN_REFETCH_SECONDS`` however many
        requests ask (tokens naming unknown keys must not make us hammer Supabase). On failure
        the keys we already have stay in use."""
        async with self._refresh:
            if time.monotonic() - self._attempted_at < JWKS_MIN_REFETCH_SECONDS:
                return
            self._attempted_at = time.monotonic()
            try:
                response = await self._http.get(url)
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json()).keys
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                log.warning("could not fetch Supabase signing keys", url=url, error=str(exc))
                return
            self._keys = {
                key.key_id: key
                for key in keys
                if key.key_id and key.algorithm_name in ASYMMETRIC_ALGORITHMS
            }
            self._fetched_at = time.monotonic()


def _reason(exc: jwt.PyJWTError) -> str:
    match exc:
        case jwt.InvalidSignatureError():
            return "bad signature"
        case jwt.MissingRequiredClaimError():
            return f"missing claim {exc.claim!r}"
        case jwt.ImmatureSignatureError():
            return "not valid yet"
        case jwt.DecodeError():
            return "malformed"
    return type(exc).__name__
