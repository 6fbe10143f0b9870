"""What the webhook integration tests share: the group JID their tenant's group has, the time
the fixtures' messages were sent, and POSTing a body with the credentials Evolution sends for its
instance. The tenant with that group is the ``tenant_with_group`` fixture of this directory's
conftest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import webhook_headers

GROUP = "120363401234567890@g.us"
SENT_AT = datetime.fromtimestamp(1761055392, UTC)


async def post(client: httpx.AsyncClient, body: Any, **kwargs: Any) -> httpx.Response:
    """POST ``body`` with the credentials Evolution sends for the body's instance."""
    headers = kwargs.pop("headers", None) or webhook_headers(body["instance"])
    return await client.post("/webhooks/evolution", json=body, headers=headers, **kwargs)
