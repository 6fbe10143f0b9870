"""Secret redaction: the step every log line goes through last, and ``redact`` for any text
shown elsewhere (error messages).

Configured secrets, tenants' keys, JWTs, ``sk-…`` keys, bearer tokens, ``token=`` query values,
URL passwords and the values of sensitive keys are replaced by ``[REDACTED]``, also when they hide
in an exception message, a traceback or a nested dict — without garbling our own messages
(``NoApiKey: no OpenAI key…`` names an exception, not a key and its value).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog

__all__ = ["REDACTED", "add_secret", "redact", "redact_event"]

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
    if not match["quote"] and match["kv"].rstrip().endswith(":") and _is_exception(match["name"]):
        # "NoApiKey: no OpenAI key…" is an exception and its message, not a key and its value;
        # the message is still searched for credentials.
        return match["kv"] + _PATTERN.sub(_replace, value)
    quote = value[0] if value[0] in "\"'" else ""
    return match["kv"] + quote + REDACTED + quote


_PASCAL_CASE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+")


_exception_names: set[str] = set()  # found before; a miss is looked up again (a class may be
# defined later), which is rare: only PascalCase names containing a sensitive word get here


def _is_exception(name: str) -> bool:
    """Whether ``name`` is the name of an exception class (``InvalidApiKey``, ``TokenError``):
    how a traceback's last line or ``f"{type(exc).__name__}: {exc}"`` starts."""
    if name in _exception_names:
        return True
    if not _PASCAL_CASE.fullmatch(name):
        return False
    pending: list[type[BaseException]] = [BaseException]
    seen: set[type[BaseException]] = set()
    while pending:
        kind = pending.pop()
        if kind.__name__ == name:
            _exception_names.add(name)
            return True
        for sub in kind.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                pending.append(sub)
    return False


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


# PostgreSQL's detail of a constraint violation repeats the whole row: a message's text, a
# summary. Not a secret, but chat content, which no log line may carry either.
_FAILING_ROW = "Failing row contains ("
_FAILING_ROW_PATTERN = re.compile(r"Failing row contains \(.*?\)(?=\.?\s*(?:\n|$))", re.DOTALL)


def _redact(value: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is not None:
        value = pattern.sub(REDACTED, value)
    if _FAILING_ROW in value:
        value = _FAILING_ROW_PATTERN.sub("Failing row contains (…)", value)
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


def redact_event(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The last step before rendering: walks the whole event dict, tracebacks included."""
    if "exc_info" in event_dict:  # never let a renderer format an exception after us
        event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
    return _scrub_mapping(event_dict, 0)
