"""Webhook authentication, bound to one instance.

Evolution has no body signature (reference §1.5). What it can send, and what each proves:

- **transport credentials**, checked from the headers and the URL before the body is read:
  ``X-Webhook-Instance: X`` with ``X-Webhook-Secret`` (or ``?instance=X&token=…``) carrying the
  secret derived for X, or a ``Bearer`` JWT (Evolution >= 2.3, from ``jwt_key``) signed with the
  key derived for X (:mod:`intellizap.ingest.credentials`). Valid for instance X only: the body's
  ``instance`` must be X. The global webhook's token (``?token=``) is valid for every instance.
  During a rollout, ``WEBHOOK_LEGACY_SECRET``/``WEBHOOK_LEGACY_JWT_KEY`` (the old shared
  secret and JWT key) are also accepted, for every instance (see docs/security.md).
- **the body's ``apikey``**: the instance token (when Evolution exposes it) proves the sender
  holds the token of the body's instance — which its customer does, so it authenticates that
  instance and no other; ``EVOLUTION_API_KEY`` (the v1 global webhook sends it) any instance.
  It needs the body, so it is read under the budget for unauthenticated bodies
  (:mod:`intellizap.ingest.bodies`), and a pre-scan of the raw bytes must find a matching key
  before the body is parsed. ``WEBHOOK_APIKEY_AUTH=false`` turns the method off: then a request
  without a transport credential is refused before its body is read.

A presented transport credential that does not verify is refused at once (no fallback). All
comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from functools import lru_cache, partial
from itertools import islice
from typing import NamedTuple

import jwt

from intellizap.ingest.credentials import (
    INSTANCE_HEADER,
    INSTANCE_QUERY,
    SECRET_HEADER,
    TOKEN_QUERY,
    decode_instance,
    global_token,
    instance_jwt_key,
    instance_secret,
)
from intellizap.ingest.errors import NotAuthenticated
from intellizap.settings import Settings

JWT_LEEWAY_SECONDS = 60
DERIVED_CACHE_SIZE = 16_384
_INSTANCE_HEADER = INSTANCE_HEADER.lower()
_SECRET_HEADER = SECRET_HEADER.lower()
_MAX_CANDIDATES = 4
# A key named "apikey"/"instance" with a plain string value, anywhere in the raw JSON. Inside a
# JSON string every quote is escaped, so these only match real keys; the parsed envelope is
# checked again afterwards, the scan only decides whether parsing is worth it.
_APIKEY = re.compile(rb'"apikey"\s*:\s*"([^"\\]{1,512})"')
_INSTANCE = re.compile(rb'"instance"\s*:\s*"([^"\\]{1,512})"')

HOW_TO_AUTHENTICATE = (
    "send the instance's credentials: the X-Webhook-Instance and X-Webhook-Secret headers (or "
    "?instance=…&token=…), or a Bearer JWT with X-Webhook-Instance, as `intellizap webhook set "
    "INSTANCE` configures them; or the instance's apikey in the body"
)


def _same(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class Transport(NamedTuple):
    """What the headers and URL of one request prove (before its body is read). A named tuple:
    one is built for every webhook."""

    instance: str | None = None
    """The one instance the credential is valid for; None with ``operator`` or none at all."""
    operator: bool = False
    """Valid for every instance: the global webhook's token (or, during the grace period, the
    legacy shared secret — then ``shared_secret`` is set too)."""
    shared_secret: bool = False

    @property
    def authenticated(self) -> bool:
        return self.operator or self.instance is not None

    def covers(self, instance: str) -> bool:
        """Whether this credential may deliver events of ``instance``."""
        return self.operator or (self.instance is not None and self.instance == instance)


NO_CREDENTIAL = Transport()


class WebhookAuth:
    def __init__(self, settings: Settings) -> None:
        self._secret = (
            settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        )
        self._jwt_key = (
            settings.webhook_jwt_key.get_secret_value() if settings.webhook_jwt_key else None
        )
        self._global_apikey = (
            settings.evolution_api_key.get_secret_value() if settings.evolution_api_key else None
        )
        self._global_token = global_token(self._secret) if self._secret else None
        # Deriving costs a few microseconds (OpenSSL's per-call set-up), on every webhook: the
        # recent instances' values are kept (bounded; an evicted one is derived again).
        self._instance_secret = (
            lru_cache(maxsize=DERIVED_CACHE_SIZE)(partial(instance_secret, self._secret))
            if self._secret
            else None
        )
        self._instance_jwt_key = (
            lru_cache(maxsize=DERIVED_CACHE_SIZE)(partial(instance_jwt_key, self._jwt_key))
            if self._jwt_key
            else None
        )
        self._legacy_secret = (
            settings.webhook_legacy_secret.get_secret_value()
            if settings.webhook_legacy_secret
            else None
        )
        self._legacy_jwt_key = (
            settings.webhook_legacy_jwt_key.get_secret_value()
            if settings.webhook_legacy_jwt_key
            else None
        )
        self._apikey_method = settings.webhook_apikey_auth

    @property
    def transport_configured(self) -> bool:
        """A webhook secret or a JWT key is configured (production requires one)."""
        return any(
            key is not None
            for key in (self._secret, self._jwt_key, self._legacy_secret, self._legacy_jwt_key)
        )

    @property
    def nothing_configured(self) -> bool:
        """Development with no credential of any kind: webhooks of tenants without an
        Evolution token are accepted as they come."""
        return not self.transport_configured and self._global_apikey is None

    def transport(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Transport:
        """What the request's headers and URL prove. Raises :class:`NotAuthenticated` when
        they carry a credential that does not verify, or when none is carried and the body's
        apikey cannot authenticate (so the body is never read)."""
        if not self.transport_configured:
            return NO_CREDENTIAL  # nothing to check them against (development)
        secrets = [s for s in (headers.get(_SECRET_HEADER), query.get(TOKEN_QUERY)) if s]
        bearer = _bearer(headers.get("authorization", ""))
        if not secrets and bearer is None:
            if not self._apikey_method:
                raise NotAuthenticated(f"no webhook credentials: {HOW_TO_AUTHENTICATE}")
            return NO_CREDENTIAL
        claimed = headers.get(_INSTANCE_HEADER)
        instance = decode_instance(claimed) if claimed else query.get(INSTANCE_QUERY)
        for secret in secrets:
            if _same(secret, self._global_token):
                return Transport(operator=True)
            if (
                instance
                and self._instance_secret is not None
                and _same(secret, self._instance_secret(instance))
            ):
                return Transport(instance=instance)
            if _same(secret, self._legacy_secret):
                return Transport(operator=True, shared_secret=True)
        if bearer is not None:
            if (
                instance
                and self._instance_jwt_key is not None
                and _valid_jwt(bearer, self._instance_jwt_key(instance))
            ):
                return Transport(instance=instance)
            if self._legacy_jwt_key is not None and _valid_jwt(bearer, self._legacy_jwt_key):
                return Transport(operator=True, shared_secret=True)
        if not instance:
            raise NotAuthenticated(
                f"webhook credentials without {INSTANCE_HEADER}: credentials are per instance; "
                f"{HOW_TO_AUTHENTICATE}"
            )
        raise NotAuthenticated(f"invalid webhook credentials: {HOW_TO_AUTHENTICATE}")

    def check_instance(self, transport: Transport, instance: str) -> None:
        """Refuse a transport credential used for another instance than the body's."""
        if transport.authenticated and not transport.covers(instance):
            raise NotAuthenticated(
                "these webhook credentials belong to another instance than the body's "
                "`instance`; each instance has its own (`intellizap webhook set INSTANCE`)"
            )

    def apikey_ok(self, apikey: str | None, tenant_token: str | None) -> bool:
        """The body's ``apikey`` is the tenant's Evolution token or the global Evolution key."""
        return _same(apikey, tenant_token) or _same(apikey, self._global_apikey)

    def required_for(self, tenant_token: str | None) -> bool:
        """Whether any credential is configured for a request to this tenant. Only in
        development with nothing configured are webhooks accepted without one."""
        return not self.nothing_configured or bool(tenant_token)

    def apikey_candidates(self, body: bytes | bytearray) -> list[tuple[str, str]]:
        """``(instance, apikey)`` pairs that the raw body may carry, from a scan that builds no
        JSON objects (an unauthenticated body is never parsed unless a pair verifies)."""
        if not self._apikey_method:
            return []
        keys = [m[1] for m in islice(_APIKEY.finditer(body), _MAX_CANDIDATES)]
        if not keys:
            return []
        instances = [m[1] for m in islice(_INSTANCE.finditer(body), _MAX_CANDIDATES)]
        return [
            (instance.decode(errors="replace"), key.decode(errors="replace"))
            for instance in instances
            for key in keys
        ]


def _bearer(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _valid_jwt(token: str, key: str) -> bool:
    try:
        jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            options={"require": ["exp", "iat"]},
            leeway=JWT_LEEWAY_SECONDS,
        )
    except jwt.PyJWTError:
        return False
    return True
