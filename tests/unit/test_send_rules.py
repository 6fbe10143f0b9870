"""Pure rules of sending: recognising our own texts, chat ids, rescheduling, findMessages
bodies and answers, and the outcome wait's configuration."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
import procrastinate.testing
import pytest
import structlog
from procrastinate.jobs import Job
from procrastinate.worker import Worker
from pydantic import ValidationError

from intellizap.evolution.errors import EvolutionUnavailable, NotOnWhatsApp
from intellizap.evolution.message_search import (
    MAX_PAGES,
    PAGE_SIZE,
    found_messages,
    pages,
    search_body,
)
from intellizap.evolution.send_ledger import chat_jid_of, fingerprint
from intellizap.evolution.sending import SendRetry
from intellizap.jobs import Later
from intellizap.logging import configure_logging
from intellizap.settings import ConfigurationError, Settings, check_for_production

GROUP = "120363401234567890@g.us"


# --- fingerprint, chat ids ----------------------------------------------------------------------


def test_a_text_is_recognised_after_the_trip_through_the_webhook() -> None:
    sent = "📝 *Resumo do grupo*\n\n• reunião na quinta"

    assert fingerprint(sent) == fingerprint(f"  {sent}\n")
    assert fingerprint(sent) == fingerprint(sent.replace("quinta", "quin\x00ta"))


@pytest.mark.parametrize(
    "other",
    [
        "📝 *Resumo do grupo*\n\n• reunião na sexta",
        "📝 *Resumo do grupo*\n• reunião na quinta",
        "📝 *resumo do grupo*\n\n• reunião na quinta",
    ],
)
def test_another_text_is_not_recognised(other: str) -> None:
    assert fingerprint("📝 *Resumo do grupo*\n\n• reunião na quinta") != fingerprint(other)


@pytest.mark.parametrize(
    ("number", "jid"),
    [
        (GROUP, GROUP),
        ("120363401234567890@G.US", GROUP),
        ("120363401234567890", GROUP),
        ("5511988880001-1610000000", "5511988880001-1610000000@g.us"),  # pre-2020 group ids
        ("+55 (11) 98888-0001", "5511988880001@s.whatsapp.net"),
        ("5511988880001", "5511988880001@s.whatsapp.net"),
        ("5511988880001:12@s.whatsapp.net", "5511988880001@s.whatsapp.net"),
    ],
)
def test_the_chat_of_a_number_is_the_one_evolution_files_it_under(number: str, jid: str) -> None:
    assert chat_jid_of(number) == jid


# --- rescheduling --------------------------------------------------------------------------------


def job(attempts: int) -> Job:
    return Job(
        id=1, queue="sending", lock="l", queueing_lock=None, task_name="t", attempts=attempts
    )


@pytest.mark.parametrize("attempts", [0, 7, 500])
def test_later_reschedules_at_its_time_however_often_it_happened(attempts: int) -> None:
    at = datetime.now(UTC) + timedelta(seconds=42)

    decision = SendRetry().get_retry_decision(exception=Later(at, "pacing"), job=job(attempts))

    assert decision is not None
    assert decision.retry_at == at
    assert decision.priority is None  # the job keeps its priority and its lock
    assert decision.lock is None


def test_an_unexpected_error_backs_off() -> None:
    before = datetime.now(UTC)

    decision = SendRetry().get_retry_decision(exception=RuntimeError("db down"), job=job(0))

    assert decision is not None
    assert decision.retry_at is not None
    assert decision.retry_at - before >= timedelta(seconds=4)


def test_a_permanent_error_outside_the_send_is_not_retried() -> None:
    assert SendRetry().get_retry_decision(exception=NotOnWhatsApp("x"), job=job(0)) is None


def test_later_says_when_without_chat_content() -> None:
    at = datetime(2026, 1, 2, 9, 0, 3, tzinfo=UTC)

    assert str(Later(at, "pacing this instance's sends")) == (
        "pacing this instance's sends; again at 2026-01-02T09:00:03.000+00:00"
    )


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog_config = structlog.get_config()
    hooks = sys.excepthook, threading.excepthook
    yield
    root.handlers, root.level = handlers, level
    structlog.configure(**structlog_config)
    sys.excepthook, threading.excepthook = hooks


@pytest.mark.usefixtures("restored_logging")
def test_a_rescheduled_send_is_logged_as_such_without_a_traceback() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    # The logger procrastinate's worker writes its job lines to (a child of procrastinate.worker,
    # named after the worker).
    queue = procrastinate.App(connector=procrastinate.testing.InMemoryConnector())
    worker_log = Worker(app=queue, name="worker-1").logger
    at = datetime(2026, 1, 2, 9, 0, 3, tzinfo=UTC)
    try:
        raise Later(at, "pacing this instance's sends")
    except Later as error:
        worker_log.info(
            "Job send_text[7](send_id=3) ended with status: Error, to retry, lasted 0.010 s",
            exc_info=error,
        )
    try:
        raise RuntimeError("database down")
    except RuntimeError as error:
        worker_log.info(
            "Job send_text[8](send_id=4) ended with status: Error, to retry", exc_info=error
        )

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    rescheduled, failed = (line for line in lines if line["logger"] == worker_log.name)
    assert rescheduled["event"] == (
        "Job send_text[7](send_id=3) rescheduled: pacing this instance's sends;"
        " again at 2026-01-02T09:00:03.000+00:00"
    )
    assert "exception" not in rescheduled
    assert "Error" in failed["event"]
    assert "database down" in failed["exception"]  # real errors keep their traceback


def test_unavailable_carries_retry_after() -> None:
    assert EvolutionUnavailable("busy", retry_after=7).retry_after == 7
    assert EvolutionUnavailable("busy").retry_after is None


# --- findMessages ------------------------------------------------------------------------------------

SINCE = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
UNTIL = SINCE + timedelta(minutes=7)


def test_v2_search_is_our_messages_in_the_chat_between_two_instants() -> None:
    assert search_body(2, GROUP, SINCE, UNTIL, 3) == {
        "where": {
            "key": {"remoteJid": GROUP, "fromMe": True},
            "messageTimestamp": {"gte": "2026-01-02T09:00:00Z", "lte": "2026-01-02T09:07:00Z"},
        },
        "offset": PAGE_SIZE,
        "page": 3,
    }


def test_v1_search_has_no_time_filter_and_reads_the_newest() -> None:
    assert search_body(1, GROUP, SINCE, UNTIL, 1) == {
        "where": {"key": {"remoteJid": GROUP, "fromMe": True}},
        "limit": PAGE_SIZE * MAX_PAGES,
    }


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"messages": {"pages": 3}}, 3),
        ({"messages": {"pages": 1000}}, MAX_PAGES),
        ({"messages": {"pages": 0}}, 1),
        ({"messages": {"pages": "2"}}, 1),
        ([], 1),
        (None, 1),
    ],
)
def test_pages_to_read(response: Any, expected: int) -> None:
    assert pages(response) == expected


def test_found_messages_read_text_and_time_in_every_encoding() -> None:
    stamp = int(SINCE.timestamp())
    records = [
        {"key": {"id": "A"}, "message": {"conversation": "um"}, "messageTimestamp": stamp},
        {
            "key": {"id": "B"},
            "message": {"extendedTextMessage": {"text": "dois"}},
            "messageTimestamp": str(stamp),
        },
        {"key": {"id": "C"}, "message": {}, "messageTimestamp": {"low": stamp, "high": 0}},
        {"key": {"id": "D"}, "messageTimestamp": -5},
        {"key": {"id": 7}},
        {"no": "key"},
    ]

    found = found_messages({"messages": {"records": records}})

    assert [(m.message_id, m.text, m.sent_at) for m in found] == [
        ("A", "um", SINCE),
        ("B", "dois", SINCE),
        ("C", None, SINCE),
        ("D", None, None),
    ]
    assert found_messages(records) == found  # v1 answers a bare list
    assert found_messages({"messages": "nothing"}) == []


# --- SEND_OUTCOME_WAIT_SECONDS -----------------------------------------------------------------------

SAFE_PRODUCTION: dict[str, Any] = {
    "env": "production",
    "database_url": "postgresql://postgres.abc:pw-123456@aws-0-sa-east-1.pooler.supabase.com:5432/postgres",
    "webhook_secret": "a" * 32,
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_outcome_wait_defaults_to_five_minutes_and_is_safe_for_production() -> None:
    assert settings().send_outcome_wait_seconds == 300
    check_for_production(settings(**SAFE_PRODUCTION))


def test_production_refuses_an_outcome_wait_shorter_than_evolution_may_take() -> None:
    with pytest.raises(ConfigurationError) as error:
        check_for_production(settings(**SAFE_PRODUCTION, send_outcome_wait_seconds=30))

    assert "SEND_OUTCOME_WAIT_SECONDS=30 is too short" in str(error.value)
    assert "at least 120" in str(error.value)


@pytest.mark.parametrize("value", [0, -1, 3601, "soon"])
def test_an_outcome_wait_out_of_range_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError) as error:
        settings(send_outcome_wait_seconds=value)

    assert "send_outcome_wait_seconds" in str(error.value)


def test_a_send_job_of_the_previous_version_fails_at_once_without_its_text_in_the_log() -> None:
    from intellizap.evolution.sending import QueuedBeforeTheLedger

    error = QueuedBeforeTheLedger("send job 7 was queued by an older version")

    assert SendRetry().get_retry_decision(exception=error, job=job(0)) is None
