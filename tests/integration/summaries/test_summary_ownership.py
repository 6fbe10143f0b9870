"""A ``resumos`` row is only trusted when its group belongs to its account.

The attack of issue 9: tenant A inserts ``resumos (grupo_id = B's group, usuario_id = A)`` as
``pendente``; the orphan sweep queued it, B's chat was summarised and posted to B's group, and A
read the summary over ``GET /api/resumos/{id}``. Migration 0007 stops new rows like that (RLS and
a composite foreign key), but a database may hold some from before; here one is planted the way
it got there (the foreign key's trigger skipped, as for a pre-migration row) and every path that
loads a summary must refuse it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from intellizap import jobs
from intellizap.app import Roles
from intellizap.db.engine import Database
from intellizap.summaries.scheduled import SUMMARIZE_TASK, requeue_orphaned_summaries, summary_job
from intellizap.task_modules import connect_queue
from tests.conftest import make_settings, running_service, wait_until
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution
from tests.fakes.openai import FakeOpenAI
from tests.fakes.supabase import legacy_token

JWT_SECRET = "legacy-supabase-jwt-secret-with-at-least-32-chars"
VICTIM_GROUP = "120363401234567890@g.us"
ATTACKER_GROUP = "120363409876543210@g.us"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = "📌 resumo"
        yield fake


@asynccontextmanager
async def api(
    database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    """The all-in-one service (API and worker)."""
    settings = make_settings(
        database_url,
        supabase_jwt_secret=JWT_SECRET,
        evolution_api_url=evolution.url,
        evolution_api_key="evolution-global-key-123456",
        openai_base_url=llm.url,
        openai_api_key="sk-platform-key-0123456789abcdef",
        send_min_interval_seconds=0,
        job_poll_seconds=0.2,
    )
    async with running_service(settings, Roles(worker=True)) as client:
        yield client


async def tenants(database: Database) -> dict[str, Any]:
    attacker_auth, victim_auth = uuid.uuid4(), uuid.uuid4()
    attacker = await create_tenant(database, "attacker", auth_id=attacker_auth)
    victim = await create_tenant(database, "victim", auth_id=victim_auth)
    await create_group(database, attacker, ATTACKER_GROUP)
    victim_group = await create_group(database, victim, VICTIM_GROUP, summary_enabled=True)
    now = datetime.now(UTC)
    async with database.session() as session:
        await session.execute(
            text(
                'INSERT INTO mensagens (grupo_id, id_externo, mensagem, "nome-autor",'
                " data_mensagem, tipo) VALUES (:g, :id, 'segredo da empresa', 'Ana', :at, 'texto')"
            ),
            [
                {"g": victim_group.id, "id": f"V{i}", "at": now - timedelta(minutes=i + 1)}
                for i in range(8)
            ],
        )
    return {
        "attacker": attacker,
        "victim": victim,
        "victim_group": victim_group,
        "attacker_auth": attacker_auth,
        "victim_auth": victim_auth,
    }


async def plant_forged_summary(database: Database, group_id: uuid.UUID, tenant_id: Any) -> Any:
    """The row as a pre-0007 database may hold it: written when nothing checked it (the
    foreign-key triggers are skipped for this one statement, as a replica would)."""
    async with database.session() as session:
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        return (
            await session.execute(
                text(
                    "INSERT INTO resumos (grupo_id, usuario_id, status, origem, created_at)"
                    " VALUES (:g, :u, 'pendente', 'sob_demanda', now() - interval '10 minutes')"
                    " RETURNING id"
                ),
                {"g": group_id, "u": tenant_id},
            )
        ).scalar_one()


async def test_the_database_refuses_a_summary_naming_another_accounts_group(
    clean_database: Database,
) -> None:
    t = await tenants(clean_database)
    with pytest.raises(IntegrityError, match="resumos_grupo_da_conta_fkey"):
        async with clean_database.session() as session:
            await session.execute(
                text(
                    "INSERT INTO resumos (grupo_id, usuario_id, status) VALUES (:g, :u, 'pendente')"
                ),
                {"g": t["victim_group"].id, "u": t["attacker"].id},
            )


async def test_a_forged_summary_is_never_queued_written_sent_or_shown(
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    llm: FakeOpenAI,
) -> None:
    t = await tenants(clean_database)
    forged = await plant_forged_summary(clean_database, t["victim_group"].id, t["attacker"].id)

    settings = make_settings(database_url)
    async with connect_queue(database_url).open_async() as queue:
        # The orphan sweep does not pick it up...
        assert await requeue_orphaned_summaries(clean_database, queue, settings) == 0
        # ...and a job for it, however it got queued, writes and sends nothing.
        job = summary_job(forged, t["victim_group"].id, datetime.now(UTC) + timedelta(hours=1))
        await jobs.defer(
            queue, SUMMARIZE_TASK, args=job.args, lock=job.lock, queueing_lock=job.queueing_lock
        )

    async def job_done() -> bool:
        # Finished jobs are deleted; it was queued before the worker started.
        waiting = await count(
            clean_database,
            "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :lock"
            " AND status IN ('todo', 'doing')",
            lock=f"summary:{forged}",
        )
        return waiting == 0

    async with api(database_url, evolution, llm) as client:
        await wait_until(job_done)
        # Neither the attacker (whose usuario_id it carries) nor the victim reads it.
        for auth_id in (t["attacker_auth"], t["victim_auth"]):
            response = await client.get(
                f"/api/resumos/{forged}",
                headers={"Authorization": f"Bearer {legacy_token(JWT_SECRET, auth_id)}"},
            )
            assert response.status_code == 404, response.text
    assert evolution.sent == []
    assert llm.completions == []
    assert await count(clean_database, "SELECT count(*) FROM uso_tokens") == 0
    assert (
        await count(
            clean_database,
            "SELECT count(*) FROM resumos WHERE conteudo IS NULL AND id = :id",
            id=forged,
        )
        == 1
    )
