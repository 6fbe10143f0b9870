"""Logging: structlog for our lines and the stdlib's, JSON in production, and secret redaction.

Every line passes :func:`_redact_processor` last, so configured secrets, tenants' keys, JWTs,
``sk-…`` keys, bearer tokens, ``token=`` query values and URL passwords never reach the output —
also when they hide in an exception message or a traceback.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 6

_SENSITIVE_KEY = re.compile(
    r"apikey|api_key|secret|token|password|passwd|authorization|jwt|key_openai|openai_key"
    r"|service_key|cookie"
)
_PATTERNS = re.compile(
    r"sk-[A-Za-z0-9_\-]{16,}"  # OpenAI-style keys, sk-proj-… included
    r"|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"  # JWTs
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]+=*"
)
_QUERY_SECRET = re.compile(r"([?&](?:apikey|token|secret|key)=)[^&\s\"']+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@\s/]+(@)", re.IGNORECASE)

_secrets: set[str] = set()
_secrets_pattern: re.Pattern[str] | None = None


def add_secret(value: str | None) -> None:
    """Register a secret known only at run time (a tenant's ``key-openai`` or Evolution token)."""
    global _secrets_pattern
    if value is None or len(value) < _MIN_SECRET_LENGTH or value in _secrets:
        return
    _secrets.add(value)
    # Longest first, so a secret containing another is removed whole.
    ordered = sorted(_secrets, key=len, reverse=True)
    _secrets_pattern = re.compile("|".join(re.escape(secret) for secret in ordered))


def redact(value: str) -> str:
    """``value`` with every secret replaced by ``[REDACTED]``."""
    if _secrets_pattern is not None:
        value = _secrets_pattern.sub(REDACTED, value)
    value = _PATTERNS.sub(REDACTED, value)
    value = _QUERY_SECRET.sub(rf"\1{REDACTED}", value)
    return _URL_PASSWORD.sub(rf"\1{REDACTED}\2", value)


def _is_sensitive(key: str, value: object) -> bool:
    name = key.lower().replace("-", "_")
    if isinstance(value, int) and (name.startswith("tokens_") or name.endswith("_tokens")):
        return False  # token counts, not credentials
    return bool(_SENSITIVE_KEY.search(name))


def _scrub(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and _is_sensitive(key, item) and item
            else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(item) for item in value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


def _redact_processor(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    scrubbed = _scrub(dict(event_dict))
    assert isinstance(scrubbed, dict)
    return scrubbed


def configure_logging(
    *, json: bool, level: str, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger (uvicorn, SQLAlchemy, procrastinate, httpx)
    to share one renderer and the redaction step. Calling it again replaces the configuration."""
    for secret in secrets:
        add_secret(secret)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.PositionalArgumentsFormatter(),
    ]
    output = stream or sys.stdout
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=output.isatty())
    )
    final: list[Any] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        _redact_processor,
        renderer,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler = logging.StreamHandler(output) if stream else _StdoutHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "sqlalchemy.engine", "pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    structlog.configure(
        # Level first: a debug line on the hot path costs nothing when debug is off.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` is at the time (test runners swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
