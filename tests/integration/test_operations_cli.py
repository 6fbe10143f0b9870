"""Operator commands for running the service: `jobs list|retry|cancel` on the real queue, `db
shell`, and `demo` (the quick start's example webhook posted to a running service)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from typing import Any

from sqlalchemy import text

from intellizap.commands.database import psql_environment
from intellizap.db.engine import Database
from tests.conftest import WEBHOOK_SECRET, make_settings, run_cli, running_service
from tests.factories import count, create_group, create_tenant

GROUP = "120363401234567890@g.us"
SECRET_TEXT = "📝 *Resumo do grupo* texto confidencial do cliente"


def cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(database_url, *args, **env)


async def add_job(
    database: Database,
    status: str,
    *,
    task: str = "send_text",
    queue: str = "sending",
    queueing_lock: str | None = None,
    args: dict[str, Any] | None = None,
) -> int:
    arguments = args or {
        "tenant_id": str(uuid.uuid4()),
        "number": GROUP,
        "text": SECRET_TEXT,
        "summary_id": str(uuid.uuid4()),
        "completes_summary": True,
    }
    async with database.session() as session:
        job_id: int = (
            await session.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status,"
                    " queueing_lock, attempts) VALUES (:q, :t, CAST(:a AS jsonb),"
                    " CAST(:s AS procrastinate_job_status), :lock, :attempts) RETURNING id"
                ),
                {
                    "q": queue,
                    "t": task,
                    "a": json.dumps(arguments),
                    "s": status,
                    "lock": queueing_lock,
                    "attempts": 8 if status == "failed" else 0,
                },
            )
        ).scalar_one()
    return job_id


async def job(database: Database, job_id: int) -> tuple[str, int, bool]:
    async with database.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT CAST(status AS text), attempts, abort_requested"
                    " FROM procrastinate_jobs WHERE id = :id"
                ),
                {"id": job_id},
            )
        ).one()
    return row[0], row[1], row[2]


async def test_jobs_list_shows_the_queue_without_message_text(
    clean_database: Database, database_url: str
) -> None:
    failed = await add_job(clean_database, "failed")
    waiting = await add_job(
        clean_database,
        "todo",
        task="summarize",
        queue="summaries",
        args={"summary_id": str(uuid.uuid4())},
    )
    running = await add_job(clean_database, "doing")
    result = await asyncio.to_thread(cli, database_url, "jobs", "list")
    assert result.returncode == 0, result.stderr
    assert "queue depth: sending doing 1, summaries todo 1" in result.stdout
    listed = {int(line.split()[0]): line for line in result.stdout.splitlines()[2:]}
    assert set(listed) == {failed, waiting, running}
    assert listed[failed].split()[1:4] == ["send_text", "sending", "failed"]
    assert "tenant_id='" in listed[failed]
    assert "text=…" in listed[failed]
    assert SECRET_TEXT not in result.stdout
    assert "confidencial" not in result.stdout
    only_failed = await asyncio.to_thread(cli, database_url, "jobs", "list", "--status", "failed")
    assert [int(line.split()[0]) for line in only_failed.stdout.splitlines()[2:]] == [failed]
    bad = await asyncio.to_thread(cli, database_url, "jobs", "list", "--status", "broken")
    assert bad.returncode == 1
    assert "unknown status 'broken'" in bad.stderr


async def test_jobs_retry_queues_failed_jobs_again_and_refuses_the_others(
    clean_database: Database, database_url: str
) -> None:
    failed = await add_job(clean_database, "failed")
    other_failed = await add_job(
        clean_database,
        "failed",
        task="summarize",
        queue="summaries",
        args={"summary_id": str(uuid.uuid4())},
    )
    waiting = await add_job(clean_database, "todo")
    duplicate_lock = "summary:abc:0"
    await add_job(clean_database, "todo", queueing_lock=duplicate_lock)
    duplicate = await add_job(clean_database, "failed", queueing_lock=duplicate_lock)

    one = await asyncio.to_thread(cli, database_url, "jobs", "retry", str(failed))
    assert one.returncode == 0, one.stderr
    assert f"job {failed}: queued to run again" in one.stdout
    status, attempts, _ = await job(clean_database, failed)
    assert status == "todo"
    assert attempts == 9  # one more attempt, not a whole new budget
    assert (
        await count(
            clean_database,
            "SELECT count(*) FROM procrastinate_events WHERE job_id = :id AND type = 'retried'",
            id=failed,
        )
        == 1
    )

    refused = await asyncio.to_thread(
        cli, database_url, "jobs", "retry", str(waiting), str(duplicate), "999999"
    )
    assert refused.returncode == 1
    assert f"job {waiting}: is todo: only failed" in refused.stdout
    assert f"job {duplicate}: not retried: an identical job is already waiting" in refused.stdout
    assert "job 999999: no such job" in refused.stdout
    assert (await job(clean_database, duplicate))[0] == "failed"

    bulk = await asyncio.to_thread(
        cli, database_url, "jobs", "retry", "--failed", "--task", "summarize", "--reset-attempts"
    )
    assert bulk.returncode == 0, bulk.stderr
    assert (await job(clean_database, other_failed))[:2] == ("todo", 0)
    assert (await job(clean_database, duplicate))[0] == "failed"  # another task: left alone


async def test_jobs_cancel_stops_waiting_jobs_and_running_ones_only_when_asked(
    clean_database: Database, database_url: str
) -> None:
    waiting = await add_job(clean_database, "todo")
    running = await add_job(clean_database, "doing")
    cancelled = await asyncio.to_thread(cli, database_url, "jobs", "cancel", str(waiting))
    assert cancelled.returncode == 0, cancelled.stderr
    assert (await job(clean_database, waiting))[0] == "cancelled"
    refused = await asyncio.to_thread(cli, database_url, "jobs", "cancel", str(running))
    assert refused.returncode == 1
    assert "add --abort" in refused.stdout
    assert await job(clean_database, running) == ("doing", 0, False)
    aborted = await asyncio.to_thread(cli, database_url, "jobs", "cancel", "--abort", str(running))
    assert aborted.returncode == 0, aborted.stderr
    assert await job(clean_database, running) == ("doing", 0, True)


async def test_db_shell_runs_psql_on_the_configured_database(
    clean_database: Database, database_url: str
) -> None:
    await create_tenant(clean_database, "acme-support")
    result = await asyncio.to_thread(
        cli, database_url, "db", "shell", "-tA", "-c", "SELECT instancia FROM usuarios"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "acme-support"
    failing = await asyncio.to_thread(cli, database_url, "db", "shell", "-c", "SELECT nope")
    assert failing.returncode != 0  # psql's own exit status


def test_psql_gets_the_password_from_the_environment_not_the_command_line() -> None:
    env = psql_environment(
        "postgresql://postgres.ref:p%40ss@aws-0-sa-east-1.pooler.supabase.com:5432/postgres"
        "?sslmode=require"
    )
    assert env == {
        "PGHOST": "aws-0-sa-east-1.pooler.supabase.com",
        "PGPORT": "5432",
        "PGUSER": "postgres.ref",
        "PGPASSWORD": "p@ss",
        "PGDATABASE": "postgres",
        "PGSSLMODE": "require",
    }


async def test_demo_posts_the_example_conversation_and_a_dry_run_summarises_it(
    clean_database: Database, database_url: str
) -> None:
    tenant = await create_tenant(clean_database, "demo")
    await create_group(clean_database, tenant, GROUP)
    async with running_service(make_settings(database_url)) as client:
        url = str(client.base_url)
        posted = await asyncio.to_thread(
            cli, database_url, "demo", "--url", url, WEBHOOK_SECRET=WEBHOOK_SECRET
        )
        again = await asyncio.to_thread(
            cli, database_url, "demo", "--url", url, WEBHOOK_SECRET="wrong-secret-0123456789"
        )
    assert posted.returncode == 0, posted.stderr
    assert "7 of 7 messages stored in group" in posted.stdout
    assert "Ana: Combinado: nota na quarta, coleta na sexta às 10h. Obrigada!" in posted.stdout
    assert again.returncode == 2
    assert "refused the webhook's credentials" in again.stderr
    assert await count(clean_database, "SELECT count(*) FROM mensagens") == 7
    dry_run = await asyncio.to_thread(
        cli, database_url, "resumo", GROUP, "--instancia", "demo", "--dry-run"
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert "Carla: Eu emito a nota amanhã cedo e mando aqui no grupo." in dry_run.stdout
    assert "--- 7 messages" in dry_run.stdout


async def test_demo_says_what_to_run_first_and_prints_a_webhook_of_now(
    clean_database: Database, database_url: str
) -> None:
    await create_tenant(clean_database, "demo")
    not_enabled, printed, no_service = await asyncio.gather(
        asyncio.to_thread(cli, database_url, "demo", "--url", "http://127.0.0.1:9"),
        asyncio.to_thread(cli, database_url, "demo", "--print", "--instancia", "acme"),
        asyncio.to_thread(cli, database_url, "demo", "--instancia", "nope"),
    )
    assert not_enabled.returncode == 1
    assert f"intellizap grupos enable demo {GROUP}" in not_enabled.stderr
    assert no_service.returncode == 1
    assert "usuarios add" in no_service.stderr
    body = json.loads(printed.stdout)
    assert body["event"] == "messages.upsert"
    assert body["instance"] == "acme"
    assert abs(body["data"]["messageTimestamp"] - time.time()) < 60
