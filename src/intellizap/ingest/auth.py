"""Webhook authentication.

Evolution has no body signature; what it can send is (reference §1.5): a custom header from the
instance's ``headers`` (we use ``X-Webhook-Secret``, or ``?token=`` in the URL for the global
webhook, which sends no custom headers), a short-lived HS256 JWT when ``headers`` contains
``jwt_key`` (2.3+), and the body's ``apikey`` (the instance token, when Evolution exposes it).
Any configured method that passes is enough. All comparisons are constant-time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import jwt

from intellizap.settings import Settings

SECRET_HEADER = "x-webhook-secret"  # noqa: S105 - a header name, not a secret
JWT_LEEWAY_SECONDS = 60


def _same(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


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

    @property
    def transport_configured(self) -> bool:
        """A shared secret or a JWT key is configured (production requires one)."""
        return self._secret is not None or self._jwt_key is not None

    def transport_ok(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        """The request carries the webhook secret or a valid JWT."""
        if self._secret is not None and (
            _same(headers.get(SECRET_HEADER), self._secret)
            or _same(query.get("token"), self._secret)
        ):
            return True
        if self._jwt_key is not None:
            authorization = headers.get("authorization", "")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token:
                try:
                    jwt.decode(
                        token.strip(),
                        self._jwt_key,
                        algorithms=["HS256"],
                        options={"require": ["exp", "iat"]},
                        leeway=JWT_LEEWAY_SECONDS,
                    )
                except jwt.PyJWTError:
                    return False
                return True
        return False

    def apikey_ok(self, apikey: str | None, tenant_token: str | None) -> bool:
        """The body's ``apikey`` is the tenant's Evolution token or the global Evolution key."""
        return _same(apikey, tenant_token) or _same(apikey, self._global_apikey)

    def required_for(self, tenant_token: str | None) -> bool:
        """Whether any credential is configured for a request to this tenant. Only in
        development with nothing configured are webhooks accepted without one."""
        return self.transport_configured or bool(tenant_token) or bool(self._global_apikey)
