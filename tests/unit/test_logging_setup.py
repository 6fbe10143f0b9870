"""Log lines' context, format, levels and set-up: context variables on every line, one JSON object
per line or a readable console, levels in any case, configuring again, the default stream, uncaught
exceptions, and lines that survive a failing stream or odd values, all still redacted."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from datetime import datetime
from typing import Any

import pytest
import structlog

import intellizap.logging as logmod
from intellizap.logging import REDACTED, configure_logging, get_logger
from tests.unit.logging_support import (
    SECRET,
    capture,
    lines,
    restore_global_state,  # noqa: F401 - used by pytestmark
)

pytestmark = pytest.mark.usefixtures("restore_global_state")


def test_context_variables_appear_on_structlog_and_stdlib_lines() -> None:
    stream = capture()
    structlog.contextvars.bind_contextvars(usuario_id="u1", grupo_id="g1", instancia="acme")
    get_logger("t").info("message stored")
    logging.getLogger("httpx").warning("slow upstream")
    structlog.contextvars.clear_contextvars()
    get_logger("t").info("outside")
    first, second, third = lines(stream)
    for line in (first, second):
        assert (line["usuario_id"], line["grupo_id"], line["instancia"]) == ("u1", "g1", "acme")
    assert "usuario_id" not in third


def test_json_mode_emits_one_parseable_object_per_line() -> None:
    stream = capture()
    get_logger("intellizap.ingest").info("message stored", tipo="audio", extra=object())
    logging.getLogger("sqlalchemy.pool").error("pool exhausted")
    get_logger("t").warning("weird text", text="caf\u00e9 \ud800 \n second line")
    raw = stream.getvalue().splitlines()
    assert len(raw) == 3
    first, second, third = (json.loads(line) for line in raw)
    assert first["event"] == "message stored"
    assert first["level"] == "info"
    assert first["logger"] == "intellizap.ingest"
    timestamp = datetime.fromisoformat(first["timestamp"])
    assert timestamp.utcoffset() is not None
    assert timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert (second["level"], second["logger"], second["event"]) == (
        "error",
        "sqlalchemy.pool",
        "pool exhausted",
    )
    assert third["text"].startswith("caf\u00e9")


def test_console_mode_is_readable_and_redacted() -> None:
    stream = capture(json_output=False)
    get_logger("t").info(f"dev line {SECRET}", instancia="acme")
    output = stream.getvalue()
    assert SECRET not in output
    assert "dev line [REDACTED]" in output
    assert "instancia=acme" in output
    assert not output.lstrip().startswith("{")


def test_levels_from_settings_in_any_case() -> None:
    stream = capture(level="warning")
    get_logger("t").info("hidden")
    logging.getLogger("uvicorn.error").info("hidden too")
    get_logger("t").warning("shown")
    assert [line["event"] for line in lines(stream)] == ["shown"]
    stream = capture(level="DEBUG")
    get_logger("t").debug("debug shown")
    assert [line["event"] for line in lines(stream)] == ["debug shown"]
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(json=True, level="loud", secrets=[])


def test_configuring_again_replaces_the_handler() -> None:
    first = capture()
    second = capture()
    get_logger("t").info("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1
    assert len(logging.getLogger().handlers) == 1


def test_default_stream_is_the_current_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="INFO", secrets=[SECRET])
    get_logger("t").info("to stdout", value=SECRET)
    logging.getLogger("uvicorn.access").info('1.2.3.4 - "GET /hook?token=%s HTTP/1.1" 200', SECRET)
    captured = capsys.readouterr()
    assert SECRET not in captured.out
    assert [json.loads(line)["event"] for line in captured.out.splitlines()] == [
        "to stdout",
        f'1.2.3.4 - "GET /hook?token={REDACTED} HTTP/1.1" 200',
    ]


def test_uncaught_exceptions_are_logged_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = capture()
    seen: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(logmod, "_previous_thread_hook", seen.append)
    error = RuntimeError(f"crash with {SECRET}")
    sys.excepthook(RuntimeError, error, None)
    threading.excepthook(threading.ExceptHookArgs([RuntimeError, error, None, None]))
    output = stream.getvalue()
    assert SECRET not in output
    assert [line["event"] for line in lines(stream)] == ["uncaught exception"] * 2
    assert len(seen) == 1  # a non-default previous hook (pytest's) still hears about it


def test_a_failing_stream_does_not_print_the_raw_event(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(f"cannot write {SECRET}")

    configure_logging(json=True, level="INFO", secrets=[SECRET], stream=Broken())
    get_logger("t").info("lost", value=SECRET)
    captured = capsys.readouterr()
    assert "logging error: OSError" in captured.err
    assert SECRET not in captured.err + captured.out


def test_unprintable_and_self_referencing_values_do_not_lose_the_line() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError(SECRET)

    loop: dict[str, Any] = {}
    loop["self"] = loop
    stream = capture()
    get_logger("t").info("odd values", thing=Unprintable(), loop=loop)
    (line,) = lines(stream)
    assert line["thing"] == "<unprintable Unprintable>"
    assert "[TRUNCATED]" in json.dumps(line["loop"])
