"""The summary options from the command line: `usuarios set --idioma/--mencoes/--resumo-dono/
--numero-dono` and `grupos resumo`, against the real database, and what they refuse."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import time
from typing import Any

import pytest
from sqlalchemy import text

from intellizap.db.engine import Database
from tests.conftest import run_cli
from tests.factories import create_group, create_tenant

GROUP = "120363401234567890@g.us"


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(database_url, *args, LOG_LEVEL="INFO")


async def one_row(database: Database, query: str) -> dict[str, Any]:
    async with database.session() as session:
        return dict((await session.execute(text(query))).mappings().one())


async def test_usuarios_set_changes_the_accounts_summary_preferences(
    clean_database: Database, database_url: str
) -> None:
    await create_tenant(clean_database, "acme-support")
    result = await asyncio.to_thread(
        cli,
        database_url,
        *("usuarios", "set", "acme-support", "--idioma", "en_US", "--mencoes", "--resumo-dono"),
        *("--numero-dono", "+55 (11) 98888-7777"),
    )
    assert result.returncode == 0, result.stderr
    row = await one_row(
        clean_database,
        "SELECT idioma, mencoes_ativas, resumo_diario_dono, numero_dono FROM usuarios",
    )
    assert row == {
        "idioma": "en",
        "mencoes_ativas": True,
        "resumo_diario_dono": True,
        "numero_dono": "5511988887777",
    }
    cleared = await asyncio.to_thread(
        cli,
        database_url,
        "usuarios",
        "set",
        "acme-support",
        "--idioma",
        "auto",
        "--numero-dono",
        "",
    )
    assert cleared.returncode == 0, cleared.stderr
    row = await one_row(clean_database, "SELECT idioma, numero_dono FROM usuarios")
    assert row == {"idioma": None, "numero_dono": None}


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--idioma", "klingon", "unsupported summary language 'klingon'"),
        ("--numero-dono", "11-9888", "is not a phone number"),
    ],
)
async def test_usuarios_set_refuses_bad_preferences_saying_what_to_type(
    clean_database: Database, database_url: str, option: str, value: str, says: str
) -> None:
    await create_tenant(clean_database, "acme-support")
    result = await asyncio.to_thread(
        cli, database_url, "usuarios", "set", "acme-support", option, value
    )
    assert result.returncode == 1
    assert says in result.stderr
    assert "Traceback" not in result.stderr


async def test_grupos_resumo_sets_and_clears_a_groups_options(
    clean_database: Database, database_url: str
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    await create_group(clean_database, tenant, GROUP)
    result = await asyncio.to_thread(
        cli,
        database_url,
        *("grupos", "resumo", "acme-support", GROUP, "--destino", "ambos", "--idioma", "es"),
        *("--instrucoes", "Foque em prazos.", "--semanal", "sex", "--hora-semanal", "18:00"),
    )
    assert result.returncode == 0, result.stderr
    query = (
        "SELECT resumo_destino, idioma, instrucoes_resumo, resumo_semanal_dia,"
        " resumo_semanal_hora FROM grupos"
    )
    assert await one_row(clean_database, query) == {
        "resumo_destino": "ambos",
        "idioma": "es",
        "instrucoes_resumo": "Foque em prazos.",
        "resumo_semanal_dia": 5,
        "resumo_semanal_hora": time(18, 0),
    }
    cleared = await asyncio.to_thread(
        cli,
        database_url,
        *("grupos", "resumo", "acme-support", GROUP, "--instrucoes", "", "--semanal", "nao"),
        *("--hora-semanal", "", "--idioma", "auto"),
    )
    assert cleared.returncode == 0, cleared.stderr
    assert await one_row(clean_database, query) == {
        "resumo_destino": "ambos",
        "idioma": None,
        "instrucoes_resumo": None,
        "resumo_semanal_dia": None,
        "resumo_semanal_hora": None,
    }


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--destino", "todos"), "use grupo, dono or ambos"),
        (("--semanal", "feriado"), "is not a day of the week"),
        (("--hora-semanal", "25:00"), "is not a time of day"),
        (("--instrucoes", "x" * 501), "at most 500"),
        ((), "nothing to change"),
    ],
)
async def test_grupos_resumo_refuses_bad_options_saying_what_to_type(
    clean_database: Database, database_url: str, args: tuple[str, ...], says: str
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    await create_group(clean_database, tenant, GROUP)
    result = await asyncio.to_thread(
        cli, database_url, "grupos", "resumo", "acme-support", GROUP, *args
    )
    assert result.returncode == 1
    assert says in result.stderr
    assert "Traceback" not in result.stderr


async def test_grupos_resumo_of_an_unknown_group_or_instance_says_so(
    clean_database: Database, database_url: str
) -> None:
    await create_tenant(clean_database, "acme-support")
    group = await asyncio.to_thread(
        cli, database_url, "grupos", "resumo", "acme-support", GROUP, "--destino", "dono"
    )
    instance = await asyncio.to_thread(
        cli, database_url, "grupos", "resumo", "nope", GROUP, "--destino", "dono"
    )
    assert group.returncode == 1
    assert f"has no group {GROUP!r}" in group.stderr
    assert instance.returncode == 1
    assert "'nope'" in instance.stderr
