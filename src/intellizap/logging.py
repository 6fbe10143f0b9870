"""Logging: structlog for our lines and the stdlib's, JSON in production, and secret redaction.

Every line — ours, uvicorn's, SQLAlchemy's, procrastinate's, httpx's — goes through one
``ProcessorFormatter`` whose last step before rendering is :func:`_redact_processor`. It runs after
the traceback has been formatted, so configured secrets, tenants' keys, JWTs, ``sk-…`` keys, bearer
tokens, ``token=`` query values, URL passwords and the values of sensitive keys never reach the
output, also when they hide in an exception message, a traceback or a nested dict.
"""

from __future__ import annotations

import contextlib
import functools
import json as _json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from types import TracebackType
from typing import Any, TextIO

import orjson
import structlog

__all__ = ["REDACTED", "add_secret", "configure_logging", "get_logger", "redact"]

REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 6
_MAX_DEPTH = 32  # deeper (or self-referencing) structures are cut, not walked forever

# --- Sensitive key names ---------------------------------------------------------------------

_SENSITIVE_KEY = re.compile(
    r"apikey|api_key|secret|token|password|passwd|authorization|jwt|key_openai|openai_key"
    r"|service_key|cookie"
)


@functools.lru_cache(maxsize=4096)
def _key_kind(key: str) -> int:
    """0: harmless; 1: sensitive; 2: sensitive unless its value is a count (``tokens_usados``)."""
    name = key.lower().replace("-", "_")
    if not _SENSITIVE_KEY.search(name):
        return 0
    if name.startswith("tokens_") or name.endswith("_tokens"):
        return 2
    return 1


def _is_sensitive(key: str, value: object) -> bool:
    kind = _key_kind(key)
    if kind == 2:
        return not (isinstance(value, int) and not isinstance(value, bool))
    return kind == 1


# --- Patterns inside strings (one precompiled regex) -------------------------------------------

# The same names as _SENSITIVE_KEY, spelled as they appear in text (``api-key``, ``Key-OpenAI``…).
_NAMES = (
    r"api[-_]?key|secret|token|passw(?:or)?d|authorization|jwt|key[-_]openai|openai[-_]key"
    r"|service[-_]key|cookie"
)
_PATTERN = re.compile(
    rf"""
    (?P<sk>(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{{16,}})                 # OpenAI keys, sk-proj-… too
    | (?P<jwt>(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)
    | (?P<bearer>(?<![A-Za-z0-9])(?i:bearer)\s+)[A-Za-z0-9._~+/-]+=*
    | (?P<url>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:)[^\s/?#]*@  # user:pw@
    | (?P<query>[?&#;](?i:api[-_]?key|access[-_]?token|refresh[-_]?token|token|secret|key
                          |password|jwt|sig|signature)=)[^&\s"'#]+
    | (?P<kv>(?<![A-Za-z0-9_-])(?P<quote>["']?)                      # apikey=…, "token": "…"
        (?P<name>[A-Za-z0-9_-]*(?i:{_NAMES})[A-Za-z0-9_-]*)(?P=quote)\s*[:=]\s*)
      (?P<value>\[REDACTED\]                                   # already done by an earlier step
               |"(?:[^"\\]|\\.)*(?:"|\Z)                           # to the end if cut short
               |'(?:[^'\\]|\\.)*(?:'|\Z)
               |(?:(?i:bearer|basic|token)\s+)?[^\s"',;&)}}\]]+)
    """,
    re.VERBOSE | re.ASCII,
)
# Every match of _PATTERN contains one of these (lower-cased); a string without any is left alone.
_TRIGGERS = (
    *("sk-", "eyj", "bearer", "://", "key", "secret", "token", "passw", "authoriz", "jwt"),
    *("cookie", "sig"),
)


def _replace(match: re.Match[str]) -> str:
    group = match.lastgroup
    if group in ("sk", "jwt"):
        return REDACTED
    if group == "url":
        # The user name is kept (redacted on its own, in case it is a key), the password is not.
        return _PATTERN.sub(_replace, match["url"]) + REDACTED + "@"
    if group in ("bearer", "query"):
        return match[group] + REDACTED
    value = match["value"]
    if _key_kind(match["name"]) == 2 and value.isdigit():
        return match[0]  # a token count, not a token
    quote = value[0] if value[0] in "\"'" else ""
    return match["kv"] + quote + REDACTED + quote


# --- Exact secrets -----------------------------------------------------------------------------

_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_regex: re.Pattern[str] | None = None  # rebuilt lazily, only after the set changed
_secrets_dirty = False
_generation = 0  # counts the rebuilds of _secrets_regex
_CACHED_LENGTH = 100  # shorter strings are redacted through a cache


def add_secret(value: str | None) -> None:
    """Register a secret known only at run time (a tenant's ``key-openai`` or Evolution token).

    Cheap when the value is already known, so it can be called on every use of a key. Values
    shorter than 6 characters (after stripping) are ignored: they would redact ordinary words.
    """
    global _secrets_dirty
    if value is None or value in _secrets:
        return
    value = value.strip()
    if len(value) < _MIN_SECRET_LENGTH or value in REDACTED:
        return
    with _lock:
        if value not in _secrets:
            _secrets.add(value)
            _secrets_dirty = True


def _trie_regex(words: Iterable[str]) -> str:
    """One regex matching any of ``words``, longest first, as a trie: matching costs the
    length of the match, not the number of secrets (hundreds of tenants' keys)."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_regex(root)


def _node_regex(node: dict[str, Any]) -> str:
    prefix: list[str] = []
    while len(node) == 1 and "" not in node:  # a run without branches: plain literal text
        ((char, node),) = node.items()
        prefix.append(re.escape(char))
    branches = [re.escape(char) + _node_regex(child) for char, child in node.items() if char]
    if not branches:
        return "".join(prefix)
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a secret may end here; a longer one continuing it is preferred
        body = f"(?:{body})?"
    return "".join(prefix) + body


def _secrets_pattern() -> re.Pattern[str] | None:
    global _secrets_regex, _secrets_dirty, _generation
    if _secrets_dirty:
        with _lock:
            if _secrets_dirty:
                _secrets_regex = re.compile(_trie_regex(_secrets)) if _secrets else None
                _generation += 1
                _secrets_dirty = False
    return _secrets_regex


def redact(value: str) -> str:
    """``value`` with every registered secret and every credential-looking part replaced by
    ``[REDACTED]``. Used by the log pipeline; also for error messages shown elsewhere."""
    pattern = _secrets_pattern()
    if len(value) <= _CACHED_LENGTH:
        return _redact_short(value, _generation)
    return _redact(value, pattern)


@functools.lru_cache(maxsize=8192)
def _redact_short(value: str, generation: int) -> str:
    # Keys, event names, instance names… repeat on every line. The secrets' generation is part
    # of the cache key, so registering a secret makes every earlier answer stale.
    return _redact(value, _secrets_regex)


def _redact(value: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is not None:
        value = pattern.sub(REDACTED, value)
    lowered = value.lower()
    for trigger in _TRIGGERS:
        if trigger in lowered:  # most strings contain none: skip the regex
            return _PATTERN.sub(_replace, value)
    return value


# --- The processor -----------------------------------------------------------------------------

# Set by our own processors, after (and over) anything the caller passed: nothing to redact.
_OWN_FIELDS = frozenset({"timestamp", "level"})


def _scrub(value: object, depth: int) -> object:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return "[TRUNCATED]"
    if isinstance(value, Mapping):
        return _scrub_mapping(value, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(item, depth + 1) for item in value]
    try:
        text = str(value)  # anything else is rendered as its (redacted) text
    except Exception:
        return f"<unprintable {type(value).__name__}>"
    return redact(text)


def _scrub_mapping(mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
    scrubbed: dict[Any, Any] = {}
    for key, item in mapping.items():
        if depth == 0 and key in _OWN_FIELDS:
            scrubbed[key] = item
        elif not isinstance(key, str):
            scrubbed[_scrub(key, depth)] = _scrub(item, depth)
        elif item is not None and item != "" and _is_sensitive(key, item):
            scrubbed[redact(key)] = REDACTED  # the whole value, whatever its shape
        else:
            scrubbed[redact(key)] = _scrub(item, depth)
    return scrubbed


def _redact_processor(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The last step before rendering: walks the whole event dict, tracebacks included."""
    if "exc_info" in event_dict:  # never let a renderer format an exception after us
        event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
    return _scrub_mapping(event_dict, 0)


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
            _redact_processor,  # last before rendering, after the traceback became text
            renderer,
        ],
    )
    handler = _Handler(stream)
    handler.setFormatter(formatter)
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
