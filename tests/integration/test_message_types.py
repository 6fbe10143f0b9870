"""Every WhatsApp content type through the real webhook into PostgreSQL, in the shape of each
Evolution version (tests/fixtures/whatsapp/, generated from WhatsApp's protobuf definitions).

What a member of the group reads is what ``mensagem`` holds; nothing a person can read is stored
without its text, and no shape makes the webhook answer anything but 200.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx

from intellizap.db.engine import Database
from tests.conftest import webhook_headers
from tests.factories import create_group, create_tenant, messages_of

WHATSAPP = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
CASES = [
    json.loads(path.read_text())
    for path in sorted(WHATSAPP.glob("*.json"))
    if path.name != "proto-message-fields.json"
]
GROUP = "120363401234567890@g.us"


def _body(case: dict[str, Any], version: str) -> tuple[dict[str, Any], str]:
    """The case's webhook with a message id of its own per version (so none is a duplicate)."""
    body = copy.deepcopy(case["webhooks"][version])
    key = body["data"].get("key")
    if key is None:  # a protocol message without a target (a chat setting)
        return body, ""
    key["id"] = f"{key['id']}-{version}"
    return body, key["id"]


async def test_every_content_type_is_stored_as_the_group_reads_it(
    service: httpx.AsyncClient, clean_database: Database
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    group = await create_group(clean_database, tenant, GROUP)
    expected: dict[str, tuple[str, str | None]] = {}
    for case in CASES:
        for version in case["webhooks"]:
            body, message_id = _body(case, version)
            response = await service.post(
                "/webhooks/evolution", json=body, headers=webhook_headers()
            )
            assert response.status_code == 200, (case["case"], version, response.text)
            outcome = response.json()["events"]
            if case["expected"]["stored"]:
                assert outcome == {"stored": 1}, (case["case"], version, outcome)
                expected[message_id] = (case["expected"]["tipo"], case["expected"]["text"])
            else:
                assert "stored" not in outcome, (case["case"], version, outcome)
    stored = {
        row["id_externo"]: (row["tipo"], row["mensagem"])
        for row in await messages_of(clean_database, group.id)
    }
    assert stored == expected
