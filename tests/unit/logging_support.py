"""What the two logging test files (``test_logging.py``, ``test_logging_setup.py``) share: the
configured secret, a log set-up writing to a string stream and its JSON lines read back, and the
``restore_global_state`` fixture each file applies to every test (``pytestmark``): the root
logger, structlog's configuration, the exception hooks, the context variables and the registered
secrets are put back as they were after each test."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog

import intellizap.redaction as redmod
from intellizap.logging import configure_logging

SECRET = "webhook-secret-value-42"


@contextmanager
def isolated_secrets() -> Iterator[None]:
    """Secrets registered inside are forgotten afterwards (they would redact other tests' lines)."""
    saved = set(redmod._secrets)
    try:
        yield
    finally:
        with redmod._lock:
            redmod._secrets.clear()
            redmod._secrets.update(saved)
            redmod._secrets_dirty = True


@pytest.fixture
def restore_global_state() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog_config = structlog.get_config()
    hooks = sys.excepthook, threading.excepthook
    with isolated_secrets():
        yield
    root.handlers, root.level = handlers, level
    structlog.configure(**structlog_config)
    sys.excepthook, threading.excepthook = hooks
    structlog.contextvars.clear_contextvars()


def capture(*, json_output: bool = True, level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(json=json_output, level=level, secrets=[SECRET], stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]
