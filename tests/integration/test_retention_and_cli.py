"""Retention cleanup and the operator commands (`resumo --dry-run`, `uso`)."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from intellizap.db.engine import Database
from intellizap.ingest.scheduled import delete_old_messages
from tests.conftest import run_cli
from tests.factories import count, create_group, create_tenant

GROUP = "120363401234567890@g.us"


async def test_messages_older_than_the_retention_are_deleted_in_batches(
    clean_database: Database,
) -> None:
    tenant = await create_tenant(clean_database)
    group = await create_group(clean_database, tenant, GROUP)
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO mensagens (grupo_id, id_externo, data_mensagem, tipo)"
                " SELECT :g, 'OLD' || n, :old, 'texto' FROM generate_series(1, 12000) n"
            ),
            {"g": group.id, "old": now - timedelta(days=31)},
        )
        await session.execute(
            text(
                "INSERT INTO mensagens (grupo_id, id_externo, data_mensagem, tipo) VALUES (:g, 'NEW', :at, 'texto')"
            ),
            {"g": group.id, "at": now - timedelta(days=29)},
        )
    deleted = await delete_old_messages(clean_database, now=now, retention_days=30)
    assert deleted == 12000
    async with clean_database.session() as session:
        left = (await session.execute(text("SELECT id_externo FROM mensagens"))).scalars().all()
    assert left == ["NEW"]


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(database_url, *args, OPENAI_API_KEY="", LOG_LEVEL="WARNING")


async def test_resumo_dry_run_prints_the_prompt_and_its_size_without_calling_anything(
    clean_database: Database, database_url: str
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    group = await create_group(
        clean_database, tenant, GROUP, summary_enabled=True, name="Equipe Vendas"
    )
    async with clean_database.session() as session:
        await session.execute(
            text(
                'INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor", data_mensagem, tipo)'
                " VALUES (:g, 'M1', 'vamos fechar o pedido amanhã', 'Ana', now() - interval '1 hour', 'texto')"
            ),
            {"g": group.id},
        )
    result = await asyncio.to_thread(
        cli, database_url, "resumo", GROUP, "--instancia", "acme-support", "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert "Ana: vamos fechar o pedido amanhã" in result.stdout
    assert "1 messages" in result.stdout
    assert "prompt tokens" in result.stdout
    assert await count(clean_database, "SELECT count(*) FROM resumos") == 0


async def test_resumo_names_an_unknown_group_clearly(
    clean_database: Database, database_url: str
) -> None:
    await create_tenant(clean_database, "acme-support")
    result = await asyncio.to_thread(
        cli, database_url, "resumo", "999@g.us", "--instancia", "acme-support"
    )
    assert result.returncode == 1
    assert "has no group '999@g.us'" in result.stderr


async def test_uso_prints_the_cycle_usage(clean_database: Database, database_url: str) -> None:
    tenant = await create_tenant(
        clean_database, "acme-support", monthly_token_quota=10_000, quota_renewal_day=1
    )
    async with clean_database.session() as session:
        await session.execute(
            text(
                "INSERT INTO uso_tokens (usuario_id, tipo, modelo, tokens_entrada, tokens_saida,"
                " segundos_audio, chave) VALUES (:t, 'resumo', 'm', 1200, 300, NULL, 'plataforma'),"
                " (:t, 'resumo', 'm', 50, 50, NULL, 'propria'),"
                " (:t, 'transcricao', 'whisper-1', 0, 0, 90, 'plataforma')"
            ),
            {"t": tenant.id},
        )
    result = await asyncio.to_thread(cli, database_url, "uso", "acme-support")
    assert result.returncode == 0, result.stderr
    assert "platform key: 1,500 tokens of 10,000" in result.stdout
    assert "own key:      100 tokens" in result.stdout
    assert "voice notes:  1.5 minutes transcribed" in result.stdout


async def test_uso_names_an_unknown_instance_clearly(
    clean_database: Database, database_url: str
) -> None:
    result = await asyncio.to_thread(cli, database_url, "uso", "nope")
    assert result.returncode == 1
    assert "no tenant has the instance 'nope'" in result.stderr


async def test_resumo_queues_an_on_demand_summary_once_per_window(
    clean_database: Database, database_url: str
) -> None:
    tenant = await create_tenant(clean_database, "acme-support")
    await create_group(clean_database, tenant, GROUP)
    first = await asyncio.to_thread(
        cli, database_url, "resumo", GROUP, "--instancia", "acme-support"
    )
    again = await asyncio.to_thread(
        cli, database_url, "resumo", GROUP, "--instancia", "acme-support"
    )
    assert first.returncode == 0, first.stderr
    assert "queued" in first.stdout
    assert again.returncode == 1
    assert "requested moments ago" in again.stderr
    jobs = await count(
        clean_database, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'summarize'"
    )
    origins = await count(
        clean_database, "SELECT count(*) FROM resumos WHERE origem = 'sob_demanda'"
    )
    assert (jobs, origins) == (1, 1)
