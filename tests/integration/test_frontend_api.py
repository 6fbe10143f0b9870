"""The frontend API (``/api/…``): Supabase-authenticated on-demand summaries, usage and group
refresh, through the real HTTP app, with fake Supabase Auth, Evolution and OpenAI servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.engine import Database
from tests.conftest import make_settings, running_service, wait_until
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.fakes.supabase import JWKS_PATH, FakeSupabaseAuth, claims_for, legacy_token

JWT_SECRET = "legacy-supabase-jwt-secret-with-at-least-32-chars"
GROUP = "120363401234567890@g.us"
SUMMARY = "📌 *Principais assuntos*\n• O orçamento foi aprovado."


@pytest.fixture
def supabase() -> Iterator[FakeSupabaseAuth]:
    with FakeSupabaseAuth.running() as fake:
        yield fake


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = SUMMARY
        yield fake


def api_settings(database_url: str, **overrides: Any) -> Any:
    return make_settings(database_url, supabase_jwt_secret=JWT_SECRET, **overrides)


@pytest.fixture
async def api(
    clean_database: Database,
    database_url: str,
    supabase: FakeSupabaseAuth,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> AsyncIterator[httpx.AsyncClient]:
    """The all-in-one service, accepting both Supabase token kinds (legacy secret and JWKS)."""
    settings = api_settings(
        database_url,
        supabase_url=supabase.url,
        evolution_api_url=evolution.url,
        evolution_api_key="evolution-global-key-123456",
        openai_base_url=llm.url,
        openai_api_key="sk-platform-key-0123456789abcdef",
        send_min_interval_seconds=0,
        job_poll_seconds=0.2,
    )
    async with running_service(settings, Roles(worker=True)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def account_with_group(
    database: Database,
    *,
    instance: str = "acme-support",
    jid: str = GROUP,
    messages: int = 8,
    active: bool = True,
    **tenant_values: Any,
) -> tuple[uuid.UUID, Any, Any]:
    """A tenant owned by a fresh Supabase user, with one group holding ``messages`` messages."""
    auth_id = tenant_values.pop("auth_id", None) or uuid.uuid4()
    tenant = await create_tenant(database, instance, auth_id=auth_id, **tenant_values)
    group = await create_group(database, tenant, jid, active=active, name="Equipe Vendas")
    now = datetime.now(UTC)
    async with database.session() as session:
        for i in range(messages):
            await session.execute(
                text(
                    'INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor",'
                    " data_mensagem, tipo) VALUES (:g, :id, :text, 'Ana', :at, 'texto')"
                ),
                {
                    "g": group.id,
                    "id": f"M{i:04d}",
                    "text": f"mensagem {i}",
                    "at": now - timedelta(minutes=messages - i),
                },
            )
    return auth_id, tenant, group


async def summary_status(client: httpx.AsyncClient, token: str, location: str) -> str:
    response = await client.get(location, headers=bearer(token))
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


# -- on-demand summaries ------------------------------------------------------------------------


async def test_signed_in_user_summarises_a_group_and_follows_it_until_sent(
    api: httpx.AsyncClient,
    clean_database: Database,
    supabase: FakeSupabaseAuth,
    evolution: FakeEvolution,
) -> None:
    auth_id, _, group = await account_with_group(clean_database)
    token = supabase.token(auth_id)

    response = await api.post(f"/api/grupos/{group.id}/resumos", headers=bearer(token))

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["grupo_id"], body["status"], body["origem"]) == (
        str(group.id),
        "pendente",
        "sob_demanda",
    )
    location = response.headers["location"]
    assert location == f"/api/resumos/{body['id']}"

    async def sent() -> bool:
        return await summary_status(api, token, location) != "pendente"

    await wait_until(sent, within=30)
    final = (await api.get(location, headers=bearer(token))).json()
    assert (final["status"], final["conteudo"], final["total_mensagens"]) == ("enviado", SUMMARY, 8)
    assert final["tokens_usados"] > 0
    assert final["data_envio"] is not None
    [message] = evolution.sent
    assert (message.instance, message.number) == ("acme-support", GROUP)
    assert SUMMARY in message.text


async def test_legacy_secret_tokens_are_accepted(
    api: httpx.AsyncClient, clean_database: Database
) -> None:
    auth_id, _, group = await account_with_group(clean_database)
    response = await api.post(
        f"/api/grupos/{group.id}/resumos", headers=bearer(legacy_token(JWT_SECRET, auth_id))
    )
    assert response.status_code == 202, response.text


async def test_a_second_request_within_the_window_is_429_with_retry_after(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth
) -> None:
    auth_id, _, group = await account_with_group(clean_database)
    headers = bearer(supabase.token(auth_id))
    first = await api.post(f"/api/grupos/{group.id}/resumos", headers=headers)
    second = await api.post(f"/api/grupos/{group.id}/resumos", headers=headers)
    assert first.status_code == 202
    assert second.status_code == 429
    wait = int(second.headers["retry-after"])
    assert 0 < wait <= 600
    assert f"try again in {wait} s" in second.json()["detail"]
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 1


async def test_the_in_group_command_and_the_api_share_the_rate_limit(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth
) -> None:
    auth_id, tenant, group = await account_with_group(clean_database)
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO resumos (grupo_id, usuario_id, status, origem)"
                " VALUES (:g, :u, 'enviado', 'sob_demanda')"
            ),
            {"g": group.id, "u": tenant.id},
        )
    response = await api.post(
        f"/api/grupos/{group.id}/resumos", headers=bearer(supabase.token(auth_id))
    )
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("active", "max_groups"), [(False, None), (True, 0)], ids=["inactive", "over-max-grupos"]
)
async def test_a_group_whose_messages_are_not_stored_is_a_conflict(
    api: httpx.AsyncClient,
    clean_database: Database,
    supabase: FakeSupabaseAuth,
    active: bool,
    max_groups: int | None,
) -> None:
    auth_id, _, group = await account_with_group(
        clean_database, active=active, max_groups=max_groups
    )
    response = await api.post(
        f"/api/grupos/{group.id}/resumos", headers=bearer(supabase.token(auth_id))
    )
    assert response.status_code == 409
    assert "activate it first" in response.json()["detail"]
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 0


async def test_a_group_enabled_a_moment_ago_can_be_summarised_at_once(
    clean_database: Database, database_url: str, supabase: FakeSupabaseAuth
) -> None:
    settings = api_settings(database_url, supabase_url=supabase.url, tenant_cache_seconds=10)
    auth_id, _, group = await account_with_group(clean_database, active=False)
    async with running_service(settings) as client:
        headers = bearer(supabase.token(auth_id))
        assert (
            await client.post(f"/api/grupos/{group.id}/resumos", headers=headers)
        ).status_code == 409
        async with clean_database.session() as session:
            await session.execute(
                text("UPDATE grupos SET ativo = true WHERE id = :g"), {"g": group.id}
            )
        response = await client.post(f"/api/grupos/{group.id}/resumos", headers=headers)
    assert response.status_code == 202, response.text


# -- tenant isolation ---------------------------------------------------------------------------


async def test_another_tenants_group_and_summary_are_answered_as_not_found(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth
) -> None:
    alice, _, _ = await account_with_group(clean_database, instance="alice")
    bob, _, bob_group = await account_with_group(
        clean_database, instance="bob", jid="120363409999999999@g.us"
    )
    bobs_summary = (
        await api.post(f"/api/grupos/{bob_group.id}/resumos", headers=bearer(supabase.token(bob)))
    ).json()["id"]
    as_alice = bearer(supabase.token(alice))

    stolen_group = await api.post(f"/api/grupos/{bob_group.id}/resumos", headers=as_alice)
    stolen_summary = await api.get(f"/api/resumos/{bobs_summary}", headers=as_alice)
    missing_group = await api.post(f"/api/grupos/{uuid.uuid4()}/resumos", headers=as_alice)

    assert stolen_group.status_code == missing_group.status_code == 404
    assert stolen_group.json() == missing_group.json()
    assert stolen_summary.status_code == 404
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 1


async def test_usage_lists_only_the_callers_accounts_in_their_cycles(
    api: httpx.AsyncClient, clean_database: Database, supabase: FakeSupabaseAuth
) -> None:
    auth_id = uuid.uuid4()
    first = await create_tenant(
        clean_database,
        "loja-centro",
        auth_id=auth_id,
        monthly_token_quota=1000,
        quota_renewal_day=1,
        timezone="America/Manaus",
    )
    second = await create_tenant(clean_database, "loja-norte", auth_id=auth_id)
    stranger = await create_tenant(clean_database, "outra-empresa", auth_id=uuid.uuid4())
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, tokens_saida,"
                " segundos_audio, chave, created_at) VALUES"
                " (:first, 'resumo', 'gpt-4o-mini', 900, 200, NULL, 'plataforma', now()),"
                " (:first, 'resumo', 'gpt-4o-mini', 50, 50, NULL, 'propria', now()),"
                " (:first, 'transcricao', 'whisper-1', 0, 0, 42.5, 'plataforma', now()),"
                " (:first, 'resumo', 'gpt-4o-mini', 7000, 0, NULL, 'plataforma', now() - interval '40 days'),"
                " (:second, 'resumo', 'gpt-4o-mini', 10, 5, NULL, 'plataforma', now()),"
                " (:stranger, 'resumo', 'gpt-4o-mini', 99999, 0, NULL, 'plataforma', now())"
            ),
            {"first": first.id, "second": second.id, "stranger": stranger.id},
        )

    response = await api.get("/api/uso", headers=bearer(supabase.token(auth_id)))

    assert response.status_code == 200, response.text
    by_instance = {account["instancia"]: account for account in response.json()["contas"]}
    assert set(by_instance) == {"loja-centro", "loja-norte"}
    centro = by_instance["loja-centro"]
    assert (centro["tokens_plataforma"], centro["tokens_chave_propria"]) == (1100, 100)
    assert (centro["segundos_audio"], centro["tokens_mes"], centro["cota_excedida"]) == (
        42.5,
        1000,
        True,
    )
    assert centro["fuso_horario"] == "America/Manaus"
    cycle_start = datetime.fromisoformat(centro["ciclo_inicio"])
    assert cycle_start.utcoffset() == timedelta(hours=-4)
    assert (cycle_start.day, cycle_start.hour, cycle_start.minute) == (1, 0, 0)
    norte = by_instance["loja-norte"]
    assert (norte["tokens_plataforma"], norte["tokens_mes"], norte["cota_excedida"]) == (
        15,
        None,
        False,
    )
    assert norte["fuso_horario"] == "America/Sao_Paulo"


async def test_group_refresh_queues_one_sync_per_account(
    api: httpx.AsyncClient,
    clean_database: Database,
    supabase: FakeSupabaseAuth,
    evolution: FakeEvolution,
) -> None:
    auth_id = uuid.uuid4()
    await create_tenant(clean_database, "acme-support", auth_id=auth_id)
    response = await api.post("/api/grupos/sincronizar", headers=bearer(supabase.token(auth_id)))
    assert response.status_code == 202
    assert response.json() == {"instancias": ["acme-support"]}

    async def fetched() -> bool:
        return bool(evolution.requests_to("/group/fetchAllGroups/acme-support"))

    await wait_until(fetched, within=20)


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
