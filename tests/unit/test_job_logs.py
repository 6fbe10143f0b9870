"""What log lines may show of a job and of an error: ids yes, chat content never, and our own
error messages are not garbled by the redaction ("NoApiKey: no OpenAI key…")."""

from __future__ import annotations

import io
import json
import logging

import pytest

from intellizap.llm import InvalidApiKey, NoApiKey
from intellizap.logging import configure_logging, redact
from intellizap.observability.job_logs import HideJobArguments, describe_job_arguments

TEXT = "Resumo: o cliente pediu 200 caixas"


def test_only_ids_flags_and_numbers_are_shown() -> None:
    shown = describe_job_arguments(
        {
            "tenant_id": "6f1c2b9e-0d4a-4c1e-9a57-3b2d8e6f0a11",
            "number": "120363401234567890@g.us",
            "text": TEXT,
            "quote": {"message_id": "ABC", "message": {"conversation": TEXT}},
            "summary_id": None,
            "completes_summary": True,
            "timestamp": 1796119440,
            "message_id": "an id with spaces is text",
        }
    )
    assert shown == (
        "tenant_id='6f1c2b9e-0d4a-4c1e-9a57-3b2d8e6f0a11', number=…, text=…, quote=…, "
        "summary_id=None, completes_summary=True, timestamp=1796119440, message_id=…"
    )
    assert describe_job_arguments("not a mapping") == "…"


def procrastinate_record(
    message: str, job: dict[str, object], **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord("procrastinate.worker", logging.INFO, __file__, 1, message, (), None)
    record.job = job
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_procrastinate_job_lines_lose_the_text_and_keep_the_ids() -> None:
    kwargs = {"tenant_id": "t-1", "text": TEXT}
    call = f"send_text[12](tenant_id='t-1', text={TEXT!r})"
    job = {"id": 12, "task_name": "send_text", "task_kwargs": kwargs, "call_string": call}
    started = procrastinate_record(f"Starting job {call}", job)
    ended = procrastinate_record(
        f"Job {call} ended with status: Success, lasted 0.1 s - Result: {TEXT}", job, result=TEXT
    )
    ok = procrastinate_record(
        f"Job {call} ended with status: Success, lasted 0.1 s - Result: 3EB0ABC",
        job,
        result="3EB0ABC",
    )
    for record in (started, ended, ok):
        assert HideJobArguments().filter(record) is True
    assert started.getMessage() == "Starting job send_text[12](tenant_id='t-1', text=…)"
    assert ended.getMessage().endswith("lasted 0.1 s - Result: …")
    assert ok.getMessage().endswith("Result: 3EB0ABC")
    assert TEXT not in json.dumps(started.job) + json.dumps(ended.job)


def test_the_filter_is_on_the_log_handler_for_every_line() -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="INFO", stream=stream)
    try:
        call = f"send_text[3](text={TEXT!r})"
        logging.getLogger("procrastinate.worker").info(
            "Starting job %s",
            call,
            extra={
                "job": {
                    "id": 3,
                    "task_name": "send_text",
                    "task_kwargs": {"text": TEXT},
                    "call_string": call,
                }
            },
        )
    finally:
        configure_logging(json=False, level="WARNING")
    line = json.loads(stream.getvalue())
    assert line["event"] == "Starting job send_text[3](text=…)"


@pytest.mark.parametrize(
    "error",
    [
        NoApiKey("no OpenAI key: set OPENAI_API_KEY or the tenant's key-openai"),
        InvalidApiKey("the tenant's own OpenAI key was refused by the provider (401): update it"),
    ],
)
def test_our_own_error_messages_are_not_garbled(error: Exception) -> None:
    message = f"{type(error).__name__}: {error}"
    assert redact(message) == message
    assert redact(f"intellizap.llm.{message}") == f"intellizap.llm.{message}"


def test_an_exception_name_does_not_hide_a_key_in_its_message() -> None:
    assert redact("NoApiKey: sk-proj-AbCdEfGhIjKlMnOpQrStUv012345") == "NoApiKey: [REDACTED]"
    assert redact("Authorization: hunter2-secret") == "Authorization: [REDACTED]"
    assert redact("ApiKey: hunter2-secret") == "ApiKey: [REDACTED]"  # not an exception's name


def test_a_constraint_violation_does_not_repeat_the_row_in_a_log_line() -> None:
    message = (
        '(psycopg.errors.NotNullViolation) null value in column "grupo_id" of relation "resumos"'
        " violates not-null constraint\nDETAIL:  Failing row contains (c6cb, null, null, "
        f"{TEXT}, pendente).\n[SQL: INSERT INTO resumos ...]\n[SQL parameters hidden due to "
        "hide_parameters=True]"
    )
    redacted = redact(message)
    assert TEXT not in redacted
    assert "DETAIL:  Failing row contains (…).\n[SQL: INSERT INTO resumos ...]" in redacted


def test_a_call_string_printed_without_its_job_is_hidden_whole() -> None:
    call = f"send_text[9](text={TEXT + ') (x'!r}, tenant_id='t-1')"
    waiting = logging.LogRecord(
        "procrastinate.worker",
        logging.INFO,
        __file__,
        1,
        f"Waiting for job to finish: worker: {call} (started 1.250 s ago)",
        (),
        None,
    )
    periodic = logging.LogRecord(
        "procrastinate.periodic",
        logging.INFO,
        __file__,
        1,
        "Periodic job summary_tick[4](timestamp=1796119560) deferred for timestamp 1796119560",
        (),
        None,
    )
    HideJobArguments().filter(waiting)
    HideJobArguments().filter(periodic)
    assert waiting.getMessage() == (
        "Waiting for job to finish: worker: send_text[9](…) (started 1.250 s ago)"
    )
    assert "timestamp=1796119560" in periodic.getMessage()  # a timestamp is not content
