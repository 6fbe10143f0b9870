"""/metrics scraped over real HTTP: the queue and summary gauges read from the database, where the
endpoint answers (public port, token, separate port), and the job wrapper's metrics and log
context on a real worker."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from intellizap import jobs
from intellizap.db.engine import Database
from intellizap.logging import configure_logging
from intellizap.observability.database import DatabaseCollector
from intellizap.observability.jobs import observe_job
from intellizap.task_modules import connect_queue
from tests.conftest import free_port, make_settings, running_service
from tests.factories import create_group, create_tenant
from tests.fakes.evolution import NOT_ON_WHATSAPP, FakeEvolution

GROUP = "120363401234567890@g.us"
SUMMARY_TEXT = "Resumo confidencial: o pedido da Padaria Central sai na sexta."


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(body: str, name: str, **labels: str) -> float:
    return samples(body)[(name, tuple(sorted(labels.items())))]


async def execute(database: Database, sql: str, **params: Any) -> Any:
    async with database.session() as session:
        result = await session.execute(text(sql), params)
        return result.all() if result.returns_rows else None


async def add_job(database: Database, queue: str, status: str, *, later: bool = False) -> int:
    rows = await execute(
        database,
        "INSERT INTO procrastinate_jobs (queue_name, task_name, status, scheduled_at)"
        " VALUES (:q, 'task', CAST(:s AS procrastinate_job_status),"
        " CASE WHEN :later THEN now() + interval '1 hour' END) RETURNING id",
        q=queue,
        s=status,
        later=later,
    )
    job_id: int = rows[0][0]
    return job_id


async def test_queue_workers_and_waiting_summaries_are_read_at_scrape_time(
    clean_database: Database, database_url: str
) -> None:
    await execute(clean_database, "DELETE FROM procrastinate_workers")
    old = await add_job(clean_database, "sending", "todo")
    await add_job(clean_database, "sending", "todo")
    await add_job(clean_database, "sending", "todo", later=True)  # a retry later
    await add_job(clean_database, "summaries", "doing")
    for _ in range(3):
        await add_job(clean_database, "sync", "failed")
    await execute(
        clean_database,
        "UPDATE procrastinate_events SET at = now() - interval '10 minutes' WHERE job_id = :id",
        id=old,
    )
    await execute(
        clean_database, "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())"
    )
    await execute(
        clean_database,
        "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour')",
    )
    await execute(clean_database, "ANALYZE procrastinate_jobs")
    tenant = await create_tenant(clean_database, "acme-support")
    group = await create_group(clean_database, tenant, GROUP)
    await execute(
        clean_database,
        "INSERT INTO resumos (grupo_id, usuario_id, status, origem, created_at) VALUES"
        " (:g, :t, 'pendente', 'agendado', now() - interval '20 minutes'),"
        " (:g, :t, 'pendente', 'sob_demanda', now()),"
        " (:g, :t, 'enviado', 'agendado', now())",
        g=group.id,
        t=tenant.id,
    )
    async with running_service(make_settings(database_url)) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    body = response.text
    assert value(body, "intellizap_metrics_database_up") == 1
    assert value(body, "intellizap_queue_jobs", queue="sending", status="todo") == 3
    assert value(body, "intellizap_queue_ready_jobs", queue="sending") == 2
    assert value(body, "intellizap_queue_jobs", queue="summaries", status="doing") == 1
    assert 590 < value(body, "intellizap_queue_oldest_ready_job_age_seconds") < 900
    assert value(body, "intellizap_queue_finished_jobs_estimate", status="failed") == 3
    assert value(body, "intellizap_queue_workers") == 1
    assert value(body, "intellizap_summaries_waiting", origin="agendado") == 1
    assert value(body, "intellizap_summaries_waiting", origin="sob_demanda") == 1
    assert 1150 < value(body, "intellizap_summaries_oldest_waiting_seconds") < 1500
    # The queues of every known task are there, also when empty.
    assert value(body, "intellizap_queue_jobs", queue="transcription", status="todo") == 0


def test_an_unreachable_database_is_a_gauge_not_a_failed_scrape() -> None:
    collector = DatabaseCollector(
        f"postgresql://postgres:pw@127.0.0.1:{free_port()}/postgres",
        worker_timeout=60,
        connect_timeout=1,
    )
    families = {family.name: family for family in collector.collect()}
    assert [sample.value for sample in families["intellizap_metrics_database_up"].samples] == [0]
    assert "intellizap_queue_jobs" not in families


async def test_production_serves_metrics_on_the_public_port_only_with_the_token(
    clean_database: Database, database_url: str
) -> None:
    production = {"env": "production", "webhook_secret": "w" * 32}
    async with running_service(make_settings(database_url, **production)) as client:
        assert (await client.get("/metrics")).status_code == 404
    token = "metrics-token-0123456789abcdef"
    async with running_service(
        make_settings(database_url, **production, metrics_token=token)
    ) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert token not in missing.text + wrong.text
    assert right.status_code == 200
    assert "intellizap_queue_jobs" in right.text


async def test_metrics_port_serves_them_apart_and_the_public_port_no_more(
    clean_database: Database, database_url: str
) -> None:
    port = free_port()
    settings = make_settings(database_url, metrics_port=port, metrics_token="t" * 20)
    async with running_service(settings) as client:
        public = await client.get("/metrics")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as metrics:
            refused = await metrics.get("/metrics")
            scraped = await metrics.get("/metrics", headers={"Authorization": "Bearer " + "t" * 20})
    assert public.status_code == 404
    assert refused.status_code == 401
    assert scraped.status_code == 200
    assert value(scraped.text, "intellizap_metrics_database_up") == 1


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Where the log goes once :func:`capture` is called (the service's start-up configures
    logging itself, so the capture starts after it)."""
    stream = io.StringIO()
    yield stream
    configure_logging(json=False, level="WARNING")


def capture(stream: io.StringIO) -> None:
    configure_logging(json=True, level="INFO", stream=stream)


async def test_the_job_wrapper_gives_worker_lines_tenant_context_and_counts_outcomes(
    clean_database: Database,
    database_url: str,
    evolution: FakeEvolution,
    log_lines: io.StringIO,
) -> None:
    from intellizap.evolution.sending import queue_text
    from intellizap.summaries.delivery import on_delivery

    tenant = await create_tenant(clean_database, "acme-support")
    group = await create_group(clean_database, tenant, GROUP)
    sent_summary, failed_summary = uuid.uuid4(), uuid.uuid4()
    await execute(
        clean_database,
        "INSERT INTO resumos (id, grupo_id, usuario_id, status, origem) VALUES"
        " (:a, :g, :t, 'pendente', 'sob_demanda'), (:b, :g, :t, 'pendente', 'agendado')",
        a=sent_summary,
        b=failed_summary,
        g=group.id,
        t=tenant.id,
    )
    settings = make_settings(
        database_url,
        evolution_api_url=evolution.url,
        evolution_api_key="evolution-global-key-123456",
        send_min_interval_seconds=0,
    )
    async with running_service(settings) as client:  # its /metrics reads this process' registry
        before = (await client.get("/metrics")).text
        capture(log_lines)
        queue = connect_queue(database_url)
        async with queue.open_async():
            # Sends of one instance run in order: the first is the one Evolution refuses.
            for summary_id in (failed_summary, sent_summary):
                await queue_text(
                    queue,
                    clean_database,
                    tenant_id=tenant.id,
                    number=GROUP,
                    text=SUMMARY_TEXT,
                    max_chars=settings.send_max_chars,
                    key=f"summary:{summary_id}",
                    on_done=on_delivery(summary_id),
                )
            evolution.fail_next("/message/sendText/", 400, body=NOT_ON_WHATSAPP)
            async with jobs.worker_context(settings, database_url) as context:
                await queue.run_worker_async(
                    wait=False,
                    concurrency=1,
                    install_signal_handlers=False,
                    additional_context={"intellizap": context},
                    worker_middleware=[observe_job],
                    delete_jobs="successful",
                )
        after = (await client.get("/metrics")).text

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return samples(after).get(key, 0.0) - samples(before).get(key, 0.0)

    # A send Evolution refuses for good is recorded in the ledger: its job ends normally.
    assert delta("intellizap_jobs_total", task="send_text", outcome="succeeded") == 2
    assert delta("intellizap_evolution_sends_total", outcome="sent") == 1
    assert delta("intellizap_evolution_sends_total", outcome="not_on_whatsapp") == 1
    assert delta("intellizap_summaries_total", status="enviado", origin="sob_demanda") == 1
    assert delta("intellizap_summaries_total", status="erro", origin="agendado") == 1
    assert delta("intellizap_job_queue_latency_seconds_count", queue="sending") == 2
    assert delta("intellizap_job_duration_seconds_count", task="send_text") == 2
    # Each summary's outcome was recorded by its send job: no job of its own to fetch and run.
    assert delta("intellizap_jobs_total", task="summary_delivered", outcome="succeeded") == 0

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    job_lines = [line for line in lines if line.get("task") == "send_text"]
    assert job_lines, lines
    for line in job_lines:
        assert line["usuario_id"] == str(tenant.id)
        assert line["instancia"] == "acme-support"
        assert line["grupo_id"] == str(group.id)
    outcome_lines = [line for line in job_lines if "ended with status" in line["event"]]
    assert len(outcome_lines) == 2
    assert all(line.get("usuario_id") == str(tenant.id) for line in outcome_lines)
    everything = log_lines.getvalue()
    assert "Padaria" not in everything  # no message text in any line, procrastinate's included
    # The send jobs carry only their ledger id: procrastinate's call lines name nothing else.
    assert "send_id=" in everything


def referenced_metrics() -> set[str]:
    """The metric families the Grafana dashboard and the alert rules query."""
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    dashboard = json.loads((deploy / "grafana" / "dashboards" / "intellizap.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    rules = yaml.safe_load((deploy / "prometheus" / "alerts.yaml").read_text())
    expressions += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for expr in expressions
        for name in re.findall(r"\b(intellizap_[a-z_]+)", expr)
    }


async def test_every_metric_the_dashboard_and_alerts_use_is_exported(
    clean_database: Database, database_url: str
) -> None:
    import intellizap.observability.evolution
    import intellizap.observability.llm
    import intellizap.observability.summaries
    import intellizap.observability.transcription  # noqa: F401 - the areas' metrics

    used = referenced_metrics()
    async with running_service(make_settings(database_url)) as client:
        body = (await client.get("/metrics")).text
    exported = set(re.findall(r"^# TYPE (intellizap_[a-z_]+) ", body, re.MULTILINE))
    exported |= {name.removesuffix("_total") for name in exported}
    exported |= {name + "_total" for name in exported}
    assert used - exported == set()
