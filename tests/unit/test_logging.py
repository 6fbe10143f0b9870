"""Secrets never reach a log line, whichever logger or exception carries them."""

from __future__ import annotations

import io
import json
import logging

import structlog
from hypothesis import given
from hypothesis import strategies as st

from intellizap.logging import add_secret, configure_logging, get_logger, redact

SECRET = "webhook-secret-value-42"
TENANT_KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUv012345"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def capture(*, json_output: bool = True) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(json=json_output, level="INFO", secrets=[SECRET], stream=stream)
    return stream


def test_configured_secret_is_removed_from_structlog_and_stdlib_lines() -> None:
    stream = capture()
    get_logger("t").info("calling with secret", header=f"X-Webhook-Secret: {SECRET}")
    logging.getLogger("uvicorn.error").info("stdlib line with %s", SECRET)
    output = stream.getvalue()
    assert SECRET not in output
    assert output.count("[REDACTED]") == 2


def test_secret_in_an_exception_traceback_is_removed() -> None:
    stream = capture()
    try:
        raise RuntimeError(f"connection failed for postgresql://app:{SECRET}@db:5432/x")
    except RuntimeError:
        get_logger("t").exception("boom")
    output = stream.getvalue()
    assert "RuntimeError" in output
    assert SECRET not in output


def test_sensitive_keys_and_patterns_are_redacted_but_counts_kept() -> None:
    stream = capture()
    get_logger("t").info(
        "request",
        apikey="instance-token-1",
        payload={"key-openai": "anything", "nested": [{"evolution_token": "tok-123456"}]},
        url="https://evo.example.com/hook?token=abc123&x=1",
        auth=f"Bearer {JWT}",
        note=f"user key {TENANT_KEY}",
        tokens_usados=123,
    )
    line = json.loads(stream.getvalue().strip())
    assert line["apikey"] == "[REDACTED]"
    assert line["payload"]["key-openai"] == "[REDACTED]"
    assert line["payload"]["nested"][0]["evolution_token"] == "[REDACTED]"
    assert line["url"] == "https://evo.example.com/hook?token=[REDACTED]&x=1"
    assert JWT not in line["auth"]
    assert TENANT_KEY not in line["note"]
    assert line["tokens_usados"] == 123


def test_secret_registered_at_run_time_is_redacted() -> None:
    stream = capture()
    add_secret("tenant-evolution-token-777")
    get_logger("t").info("loaded tenant-evolution-token-777")
    assert "tenant-evolution-token-777" not in stream.getvalue()


def test_context_variables_appear_on_every_line() -> None:
    stream = capture()
    structlog.contextvars.bind_contextvars(usuario_id="u1", grupo_id="g1", instancia="acme")
    try:
        get_logger("t").info("message stored")
    finally:
        structlog.contextvars.clear_contextvars()
    line = json.loads(stream.getvalue().strip())
    assert (line["usuario_id"], line["grupo_id"], line["instancia"]) == ("u1", "g1", "acme")
    assert line["level"] == "info"
    assert line["event"] == "message stored"


def test_console_output_is_redacted_too() -> None:
    stream = capture(json_output=False)
    get_logger("t").info(f"dev line {SECRET}")
    assert SECRET not in stream.getvalue()
    assert "dev line" in stream.getvalue()


@given(prefix=st.text(max_size=40), suffix=st.text(max_size=40))
def test_redact_never_leaves_a_registered_secret(prefix: str, suffix: str) -> None:
    add_secret(SECRET)
    assert SECRET not in redact(prefix + SECRET + suffix)
