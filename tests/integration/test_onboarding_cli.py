"""Onboarding from the command line: `usuarios add|list|show|set` and `grupos list|enable|disable`,
against the real database, and what they refuse (unknown instance, bad hour or zone, a group beyond
max_grupos) — each with a message that says what to type instead."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.tenants.repository import GroupLimitReached, change_group
from tests.conftest import (
    load_fixture,
    make_settings,
    run_cli,
    running_service,
    webhook_headers,
)
from tests.factories import count, create_group, create_tenant

GROUP = "120363401234567890@g.us"
OTHER = "120363409876543210@g.us"
THIRD = "120363400000000003@g.us"


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(database_url, *args, LOG_LEVEL="INFO")


async def tenant_row(database: Database, instance: str) -> dict[str, object] | None:
    async with database.session() as session:
        row = (
            (
                await session.execute(
                    text(
                        'SELECT "horaResumo" AS hora, fuso_horario, tokens_mes, max_grupos,'
                        ' auth_id, transcricao_ativa, "dia-renovacao-tokens" AS dia,'
                        " hora_resumo_local FROM usuarios WHERE instancia = :i"
                    ),
                    {"i": instance},
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def test_usuarios_add_creates_a_tenant_the_scheduler_understands(
    clean_database: Database, database_url: str
) -> None:
    owner = uuid.uuid4()
    result = await asyncio.to_thread(
        cli,
        database_url,
        *("usuarios", "add", "acme-support", "--hora", "9:05", "--fuso", "America/Manaus"),
        *("--tokens-mes", "200000", "--max-grupos", "3", "--auth-id", str(owner)),
    )
    assert result.returncode == 0, result.stderr
    assert "tenant acme-support created" in result.stdout
    assert "grupos enable acme-support" in result.stdout  # what to do next
    # Log lines go to stderr (warnings only), never between the command's output lines.
    assert "[info" not in result.stdout
    assert "[info" not in result.stderr
    row = await tenant_row(clean_database, "acme-support")
    assert row is not None
    assert (row["hora"], row["fuso_horario"], row["tokens_mes"], row["max_grupos"]) == (
        "09:05",
        "America/Manaus",
        200000,
        3,
    )
    assert row["auth_id"] == owner
    assert str(row["hora_resumo_local"]) == "09:05:00"  # the trigger parsed it: it will be due


async def test_usuarios_add_defaults_and_refuses_a_taken_instance(
    clean_database: Database, database_url: str
) -> None:
    first = await asyncio.to_thread(cli, database_url, "usuarios", "add", "acme-support")
    again = await asyncio.to_thread(
        cli, database_url, "usuarios", "add", "acme-support", "--hora", "10:00"
    )
    assert first.returncode == 0, first.stderr
    row = await tenant_row(clean_database, "acme-support")
    assert row is not None
    assert (row["hora"], row["fuso_horario"], row["tokens_mes"], row["dia"]) == (
        "20:00",
        "America/Sao_Paulo",
        None,
        1,
    )
    assert row["transcricao_ativa"] is False
    assert again.returncode == 1
    assert "already has the instance 'acme-support'" in again.stderr
    assert "usuarios set acme-support" in again.stderr
    assert (await tenant_row(clean_database, "acme-support") or {})["hora"] == "20:00"


async def test_a_bad_hour_or_zone_is_refused_saying_what_to_type(
    clean_database: Database, database_url: str
) -> None:
    # Every validator is tested on its own in tests/unit/test_plan.py; here, that the command
    # says it on one line, exits 1 and writes nothing.
    cases = [
        (("--hora", "25:00"), "HH:MM on a 24-hour clock"),
        (("--fuso", "Brasil/Sao Paulo"), "not a known IANA time zone"),
    ]
    results = await asyncio.gather(
        *(
            asyncio.to_thread(cli, database_url, "usuarios", "add", "acme-support", *options)
            for options, _ in cases
        )
    )
    for (options, advice), result in zip(cases, results, strict=True):
        assert result.returncode == 1, options
        assert advice in result.stderr, (options, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert await tenant_row(clean_database, "acme-support") is None


async def test_usuarios_set_changes_only_what_is_given(
    clean_database: Database, database_url: str
) -> None:
    await create_tenant(
        clean_database, "acme-support", monthly_token_quota=1000, max_groups=2, timezone="UTC"
    )
    changed = await asyncio.to_thread(
        cli,
        database_url,
        "usuarios",
        "set",
        "acme-support",
        "--hora",
        "07:30",
        "--sem-limite-tokens",
    )
    assert changed.returncode == 0, changed.stderr
    row = await tenant_row(clean_database, "acme-support")
    assert row is not None
    assert (row["hora"], row["tokens_mes"], row["max_grupos"], row["fuso_horario"]) == (
        "07:30",
        None,
        2,
        "UTC",
    )
    nothing = await asyncio.to_thread(cli, database_url, "usuarios", "set", "acme-support")
    unknown = await asyncio.to_thread(
        cli, database_url, "usuarios", "set", "nope", "--hora", "08:00"
    )
    bad = await asyncio.to_thread(
        cli, database_url, "usuarios", "set", "acme-support", "--fuso", "Mars/Olympus"
    )
    assert nothing.returncode == 1
    assert "nothing to change" in nothing.stderr
    assert unknown.returncode == 1
    assert "no tenant has the instance 'nope'" in unknown.stderr
    assert bad.returncode == 1
    assert "not a known IANA time zone" in bad.stderr
    assert (await tenant_row(clean_database, "acme-support") or {})["fuso_horario"] == "UTC"


async def test_usuarios_list_and_show_give_plan_usage_groups_and_summaries_but_no_secret(
    clean_database: Database, database_url: str
) -> None:
    tenant = await create_tenant(
        clean_database,
        "acme-support",
        monthly_token_quota=10_000,
        openai_key="sk-tenant-own-key-0123456789abcdef",
        evolution_token="instance-token-abcdef-123456",
    )
    await create_tenant(clean_database, "beta-shop")
    group = await create_group(
        clean_database, tenant, GROUP, name="Equipe Vendas", summary_enabled=True
    )
    await create_group(clean_database, tenant, OTHER, active=False, name="Clientes VIP")
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO resumos (grupo_id, usuario_id, status, origem, erro, tokens_usados)"
                " VALUES (:g, :t, 'erro', 'agendado', 'cota mensal de tokens excedida', 0),"
                " (:g, :t, 'enviado', 'sob_demanda', NULL, 1234)"
            ),
            {"g": group.id, "t": tenant.id},
        )
        await session.execute(
            text(
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, tokens_saida,"
                " chave) VALUES (:t, 'resumo', 'm', 1000, 234, 'plataforma')"
            ),
            {"t": tenant.id},
        )
    listing, shown, missing = await asyncio.gather(
        asyncio.to_thread(cli, database_url, "usuarios", "list"),
        asyncio.to_thread(cli, database_url, "usuarios", "show", "acme-support"),
        asyncio.to_thread(cli, database_url, "usuarios", "show", "nope"),
    )
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:2] == ["instance", "summary"]
    assert [line.split()[0] for line in lines[1:]] == ["acme-support", "beta-shop"]
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "tokens per cycle     10,000" in out
    assert "platform key: 1,234 tokens of 10,000" in out
    assert "Equipe Vendas" in out
    assert "Clientes VIP" in out
    assert "cota mensal de tokens excedida" in out
    assert "sob_demanda" in out
    assert "1234" in out
    assert "own OpenAI key       set" in out
    for secret in ("sk-tenant-own-key-0123456789abcdef", "instance-token-abcdef-123456"):
        assert secret not in out
        assert secret not in shown.stderr
    assert missing.returncode == 1
    assert "no tenant has the instance 'nope'" in missing.stderr


async def test_grupos_enable_creates_and_enables_within_max_grupos_and_refuses_beyond(
    clean_database: Database, database_url: str
) -> None:
    tenant = await create_tenant(clean_database, "acme-support", max_groups=1)
    await create_group(clean_database, tenant, OTHER, active=False, name="Clientes VIP")
    enabled = await asyncio.to_thread(
        cli, database_url, "grupos", "enable", "acme-support", GROUP, "--transcricao"
    )
    assert enabled.returncode == 0, enabled.stderr
    assert "summary on, transcription on" in enabled.stdout
    assert "usuarios set acme-support --transcricao" in enabled.stdout  # the tenant's is off
    beyond = await asyncio.to_thread(cli, database_url, "grupos", "enable", "acme-support", OTHER)
    assert beyond.returncode == 1
    assert "already has 1 active groups and its max_grupos is 1" in beyond.stderr
    assert "--max-grupos 2" in beyond.stderr
    # Enabling again the group already counted is not "one more".
    again = await asyncio.to_thread(
        cli, database_url, "grupos", "enable", "acme-support", GROUP, "--no-resumo"
    )
    assert again.returncode == 0, again.stderr
    assert "summary off, transcription on" in again.stdout
    states = await _groups(clean_database)
    assert states == {GROUP: (True, False, True), OTHER: (False, False, False)}
    disabled = await asyncio.to_thread(
        cli, database_url, "grupos", "disable", "acme-support", GROUP
    )
    assert disabled.returncode == 0, disabled.stderr
    now_fits = await asyncio.to_thread(cli, database_url, "grupos", "enable", "acme-support", OTHER)
    assert now_fits.returncode == 0, now_fits.stderr
    assert (await _groups(clean_database))[OTHER] == (True, True, False)
    listing = await asyncio.to_thread(cli, database_url, "grupos", "list", "acme-support")
    assert listing.returncode == 0, listing.stderr
    assert "Clientes VIP" in listing.stdout


async def _groups(database: Database) -> dict[str, tuple[bool, bool, bool]]:
    async with database.session() as session:
        rows = await session.execute(
            text("SELECT grupo_id_externo, ativo, resumo_ativo, transcricao_ativa FROM grupos")
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def test_grupos_refuse_a_bad_jid_an_unknown_instance_and_an_unknown_group(
    clean_database: Database, database_url: str
) -> None:
    await create_tenant(clean_database, "acme-support")
    bad, unknown, missing = await asyncio.gather(
        asyncio.to_thread(
            cli, database_url, "grupos", "enable", "acme-support", "5511999@s.whatsapp.net"
        ),
        asyncio.to_thread(cli, database_url, "grupos", "enable", "nope", GROUP),
        asyncio.to_thread(cli, database_url, "grupos", "disable", "acme-support", GROUP),
    )
    assert bad.returncode == 1
    assert "is not a group JID" in bad.stderr
    assert unknown.returncode == 1
    assert "no tenant has the instance 'nope'" in unknown.stderr
    assert missing.returncode == 1
    assert "has no group" in missing.stderr
    assert await count(clean_database, "SELECT count(*) FROM grupos") == 0


async def test_two_concurrent_enables_cannot_both_take_the_last_place(
    clean_database: Database,
) -> None:
    tenant = await create_tenant(clean_database, "acme-support", max_groups=2)
    await create_group(clean_database, tenant, GROUP)
    results = await asyncio.gather(
        *(
            change_group(
                clean_database, tenant.id, jid, active=True, summary=True, transcription=None
            )
            for jid in (OTHER, THIRD)
        ),
        return_exceptions=True,
    )
    assert sorted(type(result).__name__ for result in results) == [
        "GroupChange",
        "GroupLimitReached",
    ]
    assert any(isinstance(result, GroupLimitReached) for result in results)
    assert await count(clean_database, "SELECT count(*) FROM grupos WHERE ativo") == 2


async def test_a_tenant_onboarded_from_the_cli_has_its_group_messages_stored(
    clean_database: Database, database_url: str
) -> None:
    webhook = load_fixture("messages.upsert.text.group.json")
    instance = webhook["instance"]
    added = await asyncio.to_thread(cli, database_url, "usuarios", "add", instance)
    enabled = await asyncio.to_thread(cli, database_url, "grupos", "enable", instance, GROUP)
    assert added.returncode == 0, added.stderr
    assert enabled.returncode == 0, enabled.stderr
    async with running_service(make_settings(database_url)) as client:
        response = await client.post(
            "/webhooks/evolution", json=webhook, headers=webhook_headers(instance)
        )
    assert response.status_code == 200
    assert response.json()["events"] == {"stored": 1}
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 1
