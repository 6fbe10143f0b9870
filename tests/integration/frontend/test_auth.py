"""The frontend API's authentication: every unusable credential refused with its reason, never
echoed; Supabase's signing keys, CORS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import jwt

from intellizap.db.engine import Database
from tests.conftest import make_settings, running_service
from tests.factories import count, create_tenant
from tests.fakes.supabase import JWKS_PATH, FakeSupabaseAuth, claims_for, legacy_token

from .conftest import (
    JWT_SECRET,
    account_with_group,
    api_settings,
    bearer,
)

# -- authentication -----------------------------------------------------------------------------


def _tokens(supabase: FakeSupabaseAuth, user: uuid.UUID) -> dict[str, tuple[str | None, str]]:
    """Unusable credentials → the reason the API must give."""
    with FakeSupabaseAuth.running() as stranger:
        foreign = stranger.token(user)
    anon_key = jwt.encode(
        {"iss": "supabase", "ref": "project", "role": "anon", "iat": 1, "exp": 4_000_000_000},
        JWT_SECRET,
    )
    return {
        "no header": (None, "Authorization: Bearer"),
        "basic scheme": ("Basic dXNlcjpwYXNz", "Authorization: Bearer"),
        "empty bearer": ("Bearer", "Authorization: Bearer"),
        "not a jwt": ("Bearer not-a-token", "not a JWT"),
        "expired": (
            f"Bearer {supabase.token(user, exp=int(datetime.now(UTC).timestamp()) - 3600)}",
            "expired",
        ),
        "wrong secret": (
            f"Bearer {legacy_token('another-secret-of-32-characters-x', user)}",
            "bad signature",
        ),
        "anon key": (f"Bearer {anon_key}", "missing claim"),
        "service audience": (
            f"Bearer {legacy_token(JWT_SECRET, user, aud='service_role')}",
            "audience",
        ),
        "no expiry": (f"Bearer {legacy_token(JWT_SECRET, user, exp=None)}", "missing claim 'exp'"),
        "unsigned": (
            f"Bearer {jwt.encode(claims_for(user), key=None, algorithm='none')}",
            "unsupported",
        ),
        "unpublished key": (f"Bearer {foreign}", "does not publish"),
        "subject not a uuid": (
            f"Bearer {legacy_token(JWT_SECRET, user, sub='admin')}",
            "not a user id",
        ),
    }


async def test_unusable_credentials_get_401_with_the_reason_and_never_the_token(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth
) -> None:
    auth_id, _, group = await account_with_group(clean_database)
    for case, (authorization, reason) in _tokens(supabase, auth_id).items():
        headers = {"Authorization": authorization} if authorization else {}
        response = await api.post(f"/api/grupos/{group.id}/resumos", headers=headers)
        assert response.status_code == 401, case
        assert reason in response.json()["detail"], (case, response.json())
        assert response.headers["www-authenticate"].startswith("Bearer"), case
        if authorization and "." in authorization:
            assert authorization.split(" ", 1)[1] not in response.text, case
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 0


async def test_a_user_without_an_account_is_forbidden(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth
) -> None:
    await create_tenant(clean_database, "acme-support", auth_id=uuid.uuid4())
    response = await api.get("/api/uso", headers=bearer(supabase.token(uuid.uuid4())))
    assert response.status_code == 403
    assert "no IntelliZap account" in response.json()["detail"]


async def test_malformed_ids_are_422_saying_which_field(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth
) -> None:
    auth_id, _, _ = await account_with_group(clean_database)
    response = await api.post(
        "/api/grupos/not-a-uuid/resumos", headers=bearer(supabase.token(auth_id))
    )
    assert response.status_code == 422
    assert "path.grupo_id" in response.json()["detail"]
    assert "not-a-uuid" not in response.json()["detail"]


async def test_tokens_naming_unknown_keys_do_not_hammer_supabase(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth
) -> None:
    auth_id, _, _ = await account_with_group(clean_database)
    assert (await api.get("/api/uso", headers=bearer(supabase.token(auth_id)))).status_code == 200
    responses = await asyncio.gather(
        *(
            api.get("/api/uso", headers=bearer(supabase.token(auth_id, kid=supabase.rotate())))
            for _ in range(5)
        )
    )
    assert [r.status_code for r in responses] == [401] * 5  # keys rotated a moment ago
    assert len(supabase.requests_to(JWKS_PATH)) == 1


async def test_signing_keys_unreachable_is_503_while_the_legacy_secret_still_works(
    clean_database: Database, database_url: str, supabase: FakeSupabaseAuth
) -> None:
    auth_id, _, _ = await account_with_group(clean_database)
    supabase.fail_next(JWKS_PATH, 500)
    async with running_service(api_settings(database_url, supabase_url=supabase.url)) as client:
        down = await client.get("/api/uso", headers=bearer(supabase.token(auth_id)))
        legacy = await client.get("/api/uso", headers=bearer(legacy_token(JWT_SECRET, auth_id)))
    assert down.status_code == 503
    assert down.headers["retry-after"] == "30"
    assert legacy.status_code == 200  # the legacy secret does not depend on Supabase being up


async def test_without_supabase_configuration_the_api_says_what_to_set(
    clean_database: Database, database_url: str
) -> None:
    async with running_service(make_settings(database_url)) as client:
        response = await client.get("/api/uso", headers=bearer("anything"))
    assert response.status_code == 503
    assert "SUPABASE_JWT_SECRET" in response.json()["detail"]


async def test_the_frontends_origin_may_call_the_api_from_a_browser(
    clean_database: Database, database_url: str, supabase: FakeSupabaseAuth
) -> None:
    auth_id, _, _ = await account_with_group(clean_database)
    frontend = "https://app.intellizap.com.br"
    settings = api_settings(
        database_url, supabase_url=supabase.url, cors_origins=f"{frontend}/, http://localhost:5173"
    )
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with running_service(settings) as client:
        allowed = await client.options("/api/uso", headers={"Origin": frontend, **preflight})
        foreign = await client.options(
            "/api/uso", headers={"Origin": "https://evil.example", **preflight}
        )
        call = await client.get(
            "/api/uso", headers={"Origin": frontend, **bearer(supabase.token(auth_id))}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == frontend
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert foreign.status_code == 400
    assert "access-control-allow-origin" not in foreign.headers
    assert call.status_code == 200
    assert call.headers["access-control-allow-origin"] == frontend
