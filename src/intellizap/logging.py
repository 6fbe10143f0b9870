"""Logging: structlog for our lines and the stdlib's, JSON in production, and secret redaction.

Every line — ours, uvicorn's, SQLAlchemy's, procrastinate's, httpx's — goes through one
``ProcessorFormatter`` whose last step before rendering is
:func:`intellizap.redaction.redact_event`. It runs after the traceback has been formatted, so
configured secrets, tenants' keys, JWTs, ``sk-…`` keys, bearer tokens, ``token=`` query values,
URL passwords and the values of sensitive keys never reach the output, also when they hide in an
exception message, a traceback or a nested dict. Chat content travels in job arguments
(``send_text``'s ``text``), which procrastinate prints in its own lines: those lines show the
ids only (:class:`intellizap.observability.job_logs.HideJobArguments`).
"""

from __future__ import annotations

import contextlib
import json as _json
import logging
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, TextIO

import orjson
import structlog

from intellizap.observability.job_logs import HideJobArguments, ShowRescheduling
from intellizap.redaction import REDACTED, add_secret, redact, redact_event

__all__ = ["REDACTED", "add_secret", "configure_logging", "get_logger", "redact"]

# --- Output ------------------------------------------------------------------------------------


def _dumps(obj: Any, **_: Any) -> str:
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. lone surrogates: never lose a line over it
        return _json.dumps(obj, default=str)


class _Handler(logging.StreamHandler[TextIO]):
    """Writes to ``stream`` when given, else to whatever ``sys.stdout`` is at the time (test
    runners swap it). A failure while formatting never prints the raw record."""

    def __init__(self, stream: TextIO | None) -> None:
        self._fixed = stream
        super().__init__(stream)

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints record.msg and record.args: the unredacted event.
        error = sys.exc_info()[1]
        with contextlib.suppress(Exception):  # nothing sensible left to do
            sys.stderr.write(f"--- logging error: {type(error).__name__}: {redact(str(error))}\n")


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    get_logger("intellizap").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else None
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    get_logger("intellizap").critical("uncaught exception", thread=thread, exc_info=exc_info)
    if _previous_thread_hook is not threading.__excepthook__:
        _previous_thread_hook(args)  # e.g. pytest's collector; never the default printer


_previous_thread_hook = threading.excepthook


def _install_exception_hooks() -> None:
    """Uncaught exceptions are logged (hence redacted), not printed raw to stderr."""
    global _previous_thread_hook
    sys.excepthook = _log_uncaught
    if threading.excepthook is not _log_uncaught_in_thread:
        _previous_thread_hook = threading.excepthook
        threading.excepthook = _log_uncaught_in_thread


def configure_logging(
    *, json: bool, level: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger (uvicorn, SQLAlchemy, procrastinate, httpx)
    to share one renderer and the redaction step.

    ``json``: one JSON object per line (production), else structlog's console renderer. ``level``:
    a level name, any case. ``secrets``: exact values known at start-up; they add to those already
    registered (a secret is never forgotten). ``stream``: where lines go (default: the current
    ``sys.stdout``). Calling it again replaces the configuration.
    """
    for secret in secrets:
        add_secret(secret)
    numeric_level = logging.getLevelName(level.strip().upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level: {level!r}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    output = stream if stream is not None else sys.stdout
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=_is_tty(output))
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,  # last before rendering, after the traceback became text
            renderer,
        ],
    )
    handler = _Handler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ShowRescheduling())
    handler.addFilter(HideJobArguments())
    root = logging.getLogger()
    root.handlers = [handler]  # any other handler would print unredacted lines
    root.setLevel(numeric_level)
    for noisy in ("httpx", "httpcore", "sqlalchemy.engine", "pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, numeric_level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    structlog.configure(
        # Level first: a debug line on the hot path costs nothing when debug is off.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # so that configuring again takes effect everywhere
    )
    _install_exception_hooks()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger writing through the stdlib logger ``name``."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
