"""Per-instance webhook credentials, derived from the operator's two master secrets.

Evolution shows an instance's webhook configuration (URL and headers) to anyone holding that
instance's token, and every customer holds their own. So what Evolution sends for instance X
must authenticate X and nothing else:

- the secret of X is ``HMAC-SHA256(WEBHOOK_SECRET, "intellizap/webhook-secret/" + X)``;
- the JWT key of X (Evolution >= 2.3 signs a fresh HS256 JWT per delivery with ``jwt_key``) is
  ``HMAC-SHA256(WEBHOOK_JWT_KEY, "intellizap/webhook-jwt-key/" + X)``;
- Evolution also sends ``X-Webhook-Instance: X`` (or ``?instance=X`` in the URL), so the
  credential is checked before the body is read, and the body's ``instance`` must then be X.

The operator-only global webhook (``WEBHOOK_GLOBAL_URL`` in Evolution's environment, for every
instance at once) carries ``HMAC-SHA256(WEBHOOK_SECRET, "intellizap/webhook-global")`` in its URL;
it is never part of an instance's configuration, so no tenant can read it.

Nothing here is stored: the derivations are recomputed (a microsecond each), rotating a master
secret rotates every credential derived from it. Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, unquote

INSTANCE_HEADER = "X-Webhook-Instance"
SECRET_HEADER = "X-Webhook-Secret"  # noqa: S105 - a header name, not a secret
INSTANCE_QUERY = "instance"
TOKEN_QUERY = "token"  # noqa: S105 - a query parameter name

_SECRET_LABEL = b"intellizap/webhook-secret/"
_JWT_LABEL = b"intellizap/webhook-jwt-key/"
_GLOBAL_LABEL = b"intellizap/webhook-global"


def _derive(master: str, message: bytes) -> str:
    digest = hmac.digest(master.encode(), message, hashlib.sha256)
    # URL-safe and header-safe: it travels in headers and in Evolution's webhook URL.
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def instance_secret(master: str, instance: str) -> str:
    """The ``X-Webhook-Secret`` (or ``?token=``) Evolution sends for ``instance``."""
    return _derive(master, _SECRET_LABEL + instance.encode())


def instance_jwt_key(master: str, instance: str) -> str:
    """The ``jwt_key`` Evolution signs ``instance``'s webhook JWTs with."""
    return _derive(master, _JWT_LABEL + instance.encode())


def global_token(master: str) -> str:
    """The ``?token=`` of the operator's global webhook URL; valid for every instance."""
    return _derive(master, _GLOBAL_LABEL)


def encode_instance(instance: str) -> str:
    """``instance`` as it travels in the ``X-Webhook-Instance`` header and the URL query
    (percent-encoded: a header is ASCII, and a name may not be)."""
    return quote(instance, safe="")


def decode_instance(value: str) -> str:
    return unquote(value)
