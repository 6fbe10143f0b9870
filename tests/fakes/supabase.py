"""A fake Supabase Auth: publishes JWT signing keys (JWKS) like ``/auth/v1/.well-known/jwks.json``
and signs access tokens the way Supabase does (ES256 with a ``kid``; or HS256 with the legacy
secret, see :func:`legacy_token`).

    with FakeSupabaseAuth.running() as supabase:
        token = supabase.token(user_id)          # point SUPABASE_URL at supabase.url
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fakes._server import FakeServer, Handler

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


def claims_for(user_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """The claims of a signed-in user's access token, as Supabase Auth issues them."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://project.supabase.co/auth/v1",
        "sub": str(user_id),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
        "session_id": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def legacy_token(secret: str, user_id: uuid.UUID, **overrides: Any) -> str:
    """An access token signed with the project's legacy JWT secret (HS256)."""
    return jwt.encode(claims_for(user_id, **overrides), secret, algorithm="HS256")


class FakeSupabaseAuth(FakeServer):
    def __init__(self) -> None:
        self._signing: list[tuple[str, ec.EllipticCurvePrivateKey]] = []
        super().__init__()
        self.rotate()

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("GET", JWKS_PATH, self._jwks)]

    def request_key(self, request: Request) -> str | None:
        return None

    def error_body(self, status: int) -> Any:
        return {"code": status, "error_code": "unexpected_failure", "msg": "Unexpected failure"}

    def rotate(self) -> str:
        """A new signing key becomes current (the old ones stay published); returns its kid."""
        kid = secrets.token_hex(8)
        with self.lock:
            self._signing.append((kid, ec.generate_private_key(ec.SECP256R1())))
        return kid

    def token(self, user_id: uuid.UUID, *, kid: str | None = None, **overrides: Any) -> str:
        """An ES256 access token for ``user_id`` signed with the current key (or ``kid``'s)."""
        with self.lock:
            current_kid, key = self._signing[-1]
            if kid is not None:
                key = dict(self._signing)[kid]
        return jwt.encode(
            claims_for(user_id, **overrides),
            key,
            algorithm="ES256",
            headers={"kid": kid or current_kid},
        )

    async def _jwks(self, request: Request, body: bytes) -> Response:
        with self.lock:
            keys = [
                {
                    **jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True),
                    "kid": kid,
                    "alg": "ES256",
                    "use": "sig",
                    "key_ops": ["verify"],
                }
                for kid, private in self._signing
            ]
        return JSONResponse({"keys": keys})
