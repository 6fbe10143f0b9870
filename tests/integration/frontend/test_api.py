"""The frontend API (``/api/…``): Supabase-authenticated on-demand summaries, usage and group
refresh, through the real HTTP app, with fake Supabase Auth, Evolution and OpenAI servers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from intellizap.db.engine import Database
from tests.conftest import running_service, wait_until
from tests.factories import count, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.supabase import FakeSupabaseAuth, legacy_token

from .conftest import (
    GROUP,
    JWT_SECRET,
    SUMMARY,
    account_with_group,
    api_settings,
    bearer,
    summary_status,
)

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
