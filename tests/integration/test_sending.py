"""Sending to WhatsApp through the send ledger: exactly once when Evolution fails after acting or
answers nothing, in order and paced per instance without holding a worker slot, ahead of other
jobs. A real worker (in process) against the fake Evolution over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import procrastinate
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from intellizap.app import Roles
from intellizap.db.engine import Database
from intellizap.settings import Settings
from tests.conftest import make_settings, running_service, wait_until, webhook_headers
from tests.factories import count, create_group, create_tenant
from tests.fakes.evolution import FakeEvolution, not_on_whatsapp
from tests.fakes.openai import FakeOpenAI

GROUP = "120363401234567890@g.us"
SEND = "/message/sendText/"
PLATFORM_KEY = "sk-platform-key-0123456789abcdef"
CONTENT = "📌 *Principais assuntos*\n• A reunião foi remarcada para quinta."


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        fake.completion = CONTENT
        fake.transcript = "Pessoal, a reunião foi remarcada."
        yield fake


def send_settings(
    database_url: str, evolution: FakeEvolution, llm: FakeOpenAI, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "evolution_api_url": evolution.url,
        "evolution_api_key": "evolution-global-key-123456",
        "openai_base_url": llm.url,
        "openai_api_key": PLATFORM_KEY,
        "send_min_interval_seconds": 0,
        "send_outcome_wait_seconds": 1,
        "job_poll_seconds": 0.1,
        "worker_heartbeat_seconds": 1,
        "stalled_job_seconds": 3,
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
async def worker(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(
        send_settings(database_url, evolution, llm), Roles(worker=True)
    ) as client:
        yield client


async def summary_ready_to_send(
    database: Database,
    content: str = CONTENT,
    *,
    instance: str = "acme-support",
    group_jid: str = GROUP,
) -> uuid.UUID:
    """A generated summary waiting for its delivery (as after the LLM call)."""
    tenant = await create_tenant(database, instance)
    group = await create_group(database, tenant, group_jid, name="Equipe Vendas")
    summary_id = uuid.uuid4()
    async with database.session() as session:
        await session.execute(
            text(
                "INSERT INTO resumos (id, grupo_id, usuario_id, status, origem, conteudo,"
                " periodo_inicio, periodo_fim) VALUES (:id, :g, :t, 'pendente', 'sob_demanda',"
                " :content, now() - interval '1 hour', now())"
            ),
            {"id": summary_id, "g": group.id, "t": tenant.id, "content": content},
        )
    return summary_id


async def queue_summaries(database_url: str, *summary_ids: uuid.UUID) -> None:
    """Defer the summaries' jobs as another process (an API replica) would."""
    other_process = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=database_url)
    )
    async with other_process.open_async():
        for summary_id in summary_ids:
            await other_process.configure_task("summarize", queue="summaries").defer_async(
                summary_id=str(summary_id)
            )


async def summary_status(database: Database, summary_id: uuid.UUID) -> tuple[str, str | None]:
    async with database.session() as session:
        row = (
            await session.execute(
                text("SELECT status::text, erro FROM resumos WHERE id = :id"), {"id": summary_id}
            )
        ).one()
    return row[0], row[1]


async def delivered(database: Database, summary_id: uuid.UUID) -> bool:
    return (await summary_status(database, summary_id))[0] != "pendente"


async def ledger(database: Database) -> list[dict[str, Any]]:
    async with database.session() as session:
        rows = await session.execute(
            text(
                "SELECT chave, parte, partes, status, tentativas, id_externo, texto, erro"
                " FROM envios ORDER BY lote, parte"
            )
        )
        return [dict(row) for row in rows.mappings()]


async def sent_by(evolution: FakeEvolution, *instances: str) -> bool:
    return {item.instance for item in evolution.sent} >= set(instances)


async def settle() -> None:
    """Time for a duplicate to show up, if there were going to be one."""
    await asyncio.sleep(2.5)


# --- exactly once ----------------------------------------------------------------------------------


async def test_a_send_answered_500_after_it_went_out_is_found_and_not_sent_again(
    worker: httpx.AsyncClient, clean_database: Database, database_url: str, evolution: FakeEvolution
) -> None:
    summary_id = await summary_ready_to_send(clean_database)
    evolution.fail_after_sending(500, times=5)

    await queue_summaries(database_url, summary_id)
    await wait_until(lambda: delivered(clean_database, summary_id), within=30)
    await settle()

    [message] = evolution.sent
    assert CONTENT in message.text
    assert await summary_status(clean_database, summary_id) == ("enviado", None)
    [row] = await ledger(clean_database)
    assert (row["status"], row["tentativas"], row["texto"]) == ("enviado", 1, None)
    assert row["id_externo"] is not None
    assert evolution.searches, "the outcome was looked up in Evolution"
    assert [r.status for r in evolution.requests_to(SEND)] == [500]
    # Our own message is known as ours: it never ends up in a later summary.
    assert (
        await count(
            clean_database,
            "SELECT count(*) FROM mensagens_enviadas WHERE id_externo = :id",
            id=row["id_externo"],
        )
        == 1
    )


async def test_a_lost_answer_is_settled_by_the_send_message_webhook(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    """Evolution keeps no messages (findMessages finds nothing); its webhook is the witness."""
    evolution.stores_messages = False
    summary_id = await summary_ready_to_send(clean_database)
    evolution.fail_after_sending(502)
    settings = send_settings(database_url, evolution, llm, send_outcome_wait_seconds=15)
    async with running_service(settings, Roles(worker=True)) as service:
        evolution.echo_to(
            str(service.base_url.join("/webhooks/evolution")),
            webhook_headers(),
            times=2,  # Evolution's webhook retries deliver it twice
        )
        await queue_summaries(database_url, summary_id)
        await wait_until(lambda: delivered(clean_database, summary_id), within=30)
        await settle()

    assert len(evolution.sent) == 1
    assert await summary_status(clean_database, summary_id) == ("enviado", None)
    assert evolution.echoes == [200, 200]
    [row] = await ledger(clean_database)
    assert row["status"] == "enviado"
    assert row["id_externo"] is not None


async def test_a_send_evolution_never_acted_on_is_sent_again_once_the_wait_is_over(
    worker: httpx.AsyncClient, clean_database: Database, database_url: str, evolution: FakeEvolution
) -> None:
    summary_id = await summary_ready_to_send(clean_database)
    gate = evolution.lose_next_send()

    await queue_summaries(database_url, summary_id)
    assert await asyncio.to_thread(gate.wait_arrived, 30)
    gate.release()  # answered 502; Evolution never sent it
    await wait_until(lambda: delivered(clean_database, summary_id), within=30)
    await settle()

    assert len(evolution.sent) == 1
    assert await summary_status(clean_database, summary_id) == ("enviado", None)
    paths = [(r.path.split("/")[2], r.status) for r in evolution.requests]
    assert paths[0] == ("sendText", 502)
    assert paths[-1] == ("sendText", 201)
    # In between, only searches: nothing was posted before the message was known not to exist.
    assert {path for path, _ in paths[1:-1]} == {"findMessages"}
    [row] = await ledger(clean_database)
    assert (row["status"], row["tentativas"]) == ("enviado", 2)


async def test_a_summary_queued_again_after_it_was_sent_sends_nothing(
    worker: httpx.AsyncClient, clean_database: Database, database_url: str, evolution: FakeEvolution
) -> None:
    """The completion was lost (the summary still says pendente): a re-run sends nothing twice."""
    summary_id = await summary_ready_to_send(clean_database)
    await queue_summaries(database_url, summary_id)
    await wait_until(lambda: delivered(clean_database, summary_id), within=30)
    async with clean_database.session() as session:
        await session.execute(
            text("UPDATE resumos SET status = 'pendente', data_envio = NULL WHERE id = :id"),
            {"id": summary_id},
        )

    await queue_summaries(database_url, summary_id)
    await wait_until(lambda: delivered(clean_database, summary_id), within=30)
    await settle()

    assert len(evolution.sent) == 1
    assert await summary_status(clean_database, summary_id) == ("enviado", None)


@pytest.fixture
async def refused_once(clean_database: Database) -> AsyncIterator[None]:
    """The first UPDATE of a summary to ``enviado`` fails, as a lost connection or a deadlock
    would (the sequence counts the attempts: it is not rolled back with them)."""
    async with clean_database.session() as session:
        await session.execute(text("CREATE SEQUENCE delivery_attempts"))
        await session.execute(
            text(
                """
                CREATE FUNCTION refuse_first_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.status = 'enviado' AND nextval('delivery_attempts') = 1 THEN
                        RAISE EXCEPTION 'delivery refused once by the test';
                    END IF;
                    RETURN NEW;
                END $$
                """
            )
        )
        await session.execute(
            text(
                "CREATE TRIGGER refuse_first_delivery BEFORE UPDATE ON resumos FOR EACH ROW"
                " EXECUTE FUNCTION refuse_first_delivery()"
            )
        )
    try:
        yield
    finally:
        async with clean_database.session() as session:
            await session.execute(text("DROP TRIGGER refuse_first_delivery ON resumos"))
            await session.execute(text("DROP FUNCTION refuse_first_delivery()"))
            await session.execute(text("DROP SEQUENCE delivery_attempts"))


async def test_a_completion_that_fails_in_the_send_job_is_queued_and_retried_on_its_own(
    refused_once: None,
    worker: httpx.AsyncClient,
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
) -> None:
    """Marking the summary sent, in its send job, fails: the message is not sent again, and
    the completion, queued as a job of its own, marks the summary on its retry."""
    summary_id = await summary_ready_to_send(clean_database)
    before = (await worker.get("/metrics")).text  # this process' registry: the worker's
    await queue_summaries(database_url, summary_id)
    await wait_until(lambda: delivered(clean_database, summary_id), within=30)
    await settle()
    after = (await worker.get("/metrics")).text

    def runs(task: str, outcome: str) -> float:
        return metric(after, task, outcome) - metric(before, task, outcome)

    assert len(evolution.sent) == 1
    assert await summary_status(clean_database, summary_id) == ("enviado", None)
    assert await count(clean_database, "SELECT last_value FROM delivery_attempts") == 2
    assert runs("send_text", "succeeded") == 1  # it ran once: posted, then queued the rest
    assert runs("send_text", "retry") == 0
    assert runs("summary_delivered", "succeeded") == 1
    [row] = await ledger(clean_database)
    assert row["status"] == "enviado"


def metric(body: str, task: str, outcome: str) -> float:
    """``intellizap_jobs_total`` of ``task`` and ``outcome`` in a /metrics body (0 if absent)."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "intellizap_jobs_total" and sample.labels == {
                "task": task,
                "outcome": outcome,
            }:
                return sample.value
    return 0.0


# --- order, failure of a part ------------------------------------------------------------------------

LONG = "\n\n".join(f"Parágrafo {n}: " + "assunto importante discutido " * 5 for n in range(6))


async def test_the_parts_of_a_long_summary_go_out_in_order_and_spaced(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    interval = 0.5
    summary_id = await summary_ready_to_send(clean_database, LONG)
    settings = send_settings(
        database_url, evolution, llm, send_max_chars=200, send_min_interval_seconds=interval
    )
    async with running_service(settings, Roles(worker=True)):
        await queue_summaries(database_url, summary_id)
        await wait_until(lambda: delivered(clean_database, summary_id), within=60)

    sent = evolution.sent
    assert len(sent) >= 4
    assert sent[0].text.startswith("📝 *Resumo do grupo*")
    words = " ".join(m.text for m in sent).split()
    assert words[-len(LONG.split()) :] == LONG.split()  # every word, in order
    gaps = [b.at - a.at for a, b in itertools.pairwise(sent)]
    assert all(gap >= interval * 0.95 for gap in gaps), gaps
    assert await summary_status(clean_database, summary_id) == ("enviado", None)
    rows = await ledger(clean_database)
    assert [row["status"] for row in rows] == ["enviado"] * len(sent)


async def test_a_part_that_fails_for_good_cancels_the_rest_and_fails_the_summary(
    clean_database: Database, database_url: str, evolution: FakeEvolution, llm: FakeOpenAI
) -> None:
    summary_id = await summary_ready_to_send(clean_database, LONG)
    settings = send_settings(
        database_url, evolution, llm, send_max_chars=200, send_min_interval_seconds=1.5
    )
    async with running_service(settings, Roles(worker=True)):
        await queue_summaries(database_url, summary_id)
        await wait_until(lambda: sent_by(evolution, "acme-support"), within=30)
        evolution.fail_next(SEND, 400, body=not_on_whatsapp(GROUP))  # the bot left the group
        await wait_until(lambda: delivered(clean_database, summary_id), within=30)
        await settle()

    assert len(evolution.sent) == 1  # the rest of a summary missing a part is not sent
    status, reason = await summary_status(clean_database, summary_id)
    assert status == "erro"
    assert reason is not None
    assert reason.startswith("envio falhou")
    rows = await ledger(clean_database)
    assert [row["status"] for row in rows[:2]] == ["enviado", "falhou"]
    assert {row["status"] for row in rows[2:]} == {"cancelado"}
    assert all(row["texto"] is None for row in rows)  # nothing of the chat kept once final
