"""Webhooks reach their endpoint ahead of FastAPI's middleware (ingest/fast_lane.py); everything
else, and every refusal's HTTP answer, stays the application's."""

from __future__ import annotations

import httpx

from intellizap.db.engine import Database
from tests.conftest import load_fixture, webhook_headers
from tests.factories import create_group, create_tenant

AUTH = webhook_headers()


async def test_webhook_paths_are_served_and_neighbours_are_not(
    service: httpx.AsyncClient, clean_database: Database
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    await create_group(clean_database, tenant)
    body = load_fixture("messages.upsert.text.group.json")
    for path in ("/webhooks/evolution", "/webhooks/evolution/messages-upsert"):
        response = await service.post(path, json=body, headers=AUTH)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "application/json"
    assert (await service.post("/webhooks/evolutionX", json=body, headers=AUTH)).status_code == 404
    assert (await service.get("/webhooks/evolution", headers=AUTH)).status_code == 405
    assert (await service.get("/health")).status_code == 200


async def test_refusals_keep_the_applications_answers_and_metrics(
    service: httpx.AsyncClient,
) -> None:
    malformed = await service.post(
        "/webhooks/evolution",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["detail"].startswith("body is not valid JSON")
    unauthenticated = await service.post("/webhooks/evolution", json={"event": "x"})
    assert unauthenticated.status_code == 401
    invalid = await service.post("/webhooks/evolution", json={"event": 5}, headers=AUTH)
    assert invalid.status_code == 422
    assert "event must be a non-empty string" in invalid.json()["detail"]
    metrics = (await service.get("/metrics")).text
    for status in ("400", "401", "422"):
        assert f'intellizap_webhooks_total{{status="{status}"}}' in metrics
