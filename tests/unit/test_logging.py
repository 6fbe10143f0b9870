"""Secrets never reach a log line, whichever logger, exception or structure carries them."""

from __future__ import annotations

import logging
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

import intellizap.redaction as redmod
from intellizap.logging import REDACTED, add_secret, get_logger, redact
from tests.unit.logging_support import (
    SECRET,
    capture,
    isolated_secrets,
    lines,
    restore_global_state,  # noqa: F401 - used by pytestmark
)

pytestmark = pytest.mark.usefixtures("restore_global_state")

TENANT_KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUv012345"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
KEY_CHARS = string.ascii_letters + string.digits + "-_"


# --- Exact secrets, whichever way they travel ----------------------------------------------------


def test_configured_secret_is_removed_from_structlog_and_stdlib_lines() -> None:
    stream = capture()
    get_logger("t").info("calling with secret", header=f"X-Webhook-Secret: {SECRET}")
    get_logger("t").info("positional %s", SECRET)
    logging.getLogger("uvicorn.error").info("stdlib line with %s", SECRET)
    output = stream.getvalue()
    assert SECRET not in output
    first, second, third = lines(stream)
    assert first["header"] == f"X-Webhook-Secret: {REDACTED}"
    assert second["event"] == f"positional {REDACTED}"
    assert third["event"] == f"stdlib line with {REDACTED}"
    assert third["logger"] == "uvicorn.error"


def test_secret_in_an_exception_message_and_traceback_is_removed() -> None:
    stream = capture()
    try:
        raise RuntimeError(f"upstream refused {SECRET}")
    except RuntimeError:
        get_logger("t").exception("boom")
        logging.getLogger("procrastinate.worker").exception("stdlib boom")
    output = stream.getvalue()
    assert output.count("RuntimeError: upstream refused [REDACTED]") == 2
    assert "Traceback (most recent call last)" in output
    assert SECRET not in output


def test_secret_in_a_console_traceback_is_removed() -> None:
    stream = capture(json_output=False)
    try:
        raise ValueError(f"bad key {SECRET}")
    except ValueError:
        get_logger("t").exception("dev boom")
    output = stream.getvalue()
    assert "dev boom" in output
    assert "ValueError: bad key [REDACTED]" in output
    assert SECRET not in output
    assert "\x1b[" not in output  # no colours when the stream is not a terminal


def test_secret_registered_at_run_time_is_redacted() -> None:
    stream = capture()
    get_logger("t").info("before", note="no secret yet")  # fills the cache of short strings
    add_secret("tenant-evolution-token-777")
    add_secret("  tenant-openai-key-with-spaces  ")
    get_logger("t").info("loaded tenant-evolution-token-777")
    get_logger("t").info("using", note="tenant-openai-key-with-spaces")
    output = stream.getvalue()
    assert "tenant-evolution-token-777" not in output
    assert "tenant-openai-key-with-spaces" not in output


def test_short_or_empty_secrets_are_ignored() -> None:
    add_secret(None)
    add_secret("")
    add_secret("abc")
    add_secret("ACTED]")  # part of the marker itself: it would never stop matching
    assert redact("abc and [REDACTED]") == "abc and [REDACTED]"


def test_the_longest_of_overlapping_secrets_wins() -> None:
    add_secret("abcdef")
    add_secret("abcdefghij")
    assert redact("x abcdefghij y abcdef z") == "x [REDACTED] y [REDACTED] z"


def test_secret_inside_a_dict_key_is_removed() -> None:
    stream = capture()
    get_logger("t").info("by key", cache={SECRET: "tenant 1"})
    assert SECRET not in stream.getvalue()


# --- Patterns and sensitive keys ----------------------------------------------------------------


def test_sensitive_keys_and_patterns_are_redacted_but_counts_kept() -> None:
    stream = capture()
    get_logger("t").info(
        "request",
        apikey="instance-token-1",
        payload={
            "key-openai": "anything",
            "nested": [{"evolution_token": "tok-123456"}, ("Authorization", "fine")],
        },
        url="https://evo.example.com/hook?token=abc123&x=1",
        dsn="postgresql://app:pg-password@db:5432/intellizap",
        auth=f"Bearer {JWT}",
        note=f"user key {TENANT_KEY}",
        tokens_usados=123,
        tokens_entrada=7,
        max_tokens=500,
        tokens_mes="not-a-count",
    )
    (line,) = lines(stream)
    assert line["apikey"] == REDACTED
    assert line["payload"]["key-openai"] == REDACTED
    assert line["payload"]["nested"][0]["evolution_token"] == REDACTED
    assert line["payload"]["nested"][1] == ["Authorization", "fine"]
    assert line["url"] == f"https://evo.example.com/hook?token={REDACTED}&x=1"
    assert line["dsn"] == f"postgresql://app:{REDACTED}@db:5432/intellizap"
    assert line["auth"] == f"Bearer {REDACTED}"
    assert line["note"] == f"user key {REDACTED}"
    assert (line["tokens_usados"], line["tokens_entrada"], line["max_tokens"]) == (123, 7, 500)
    assert line["tokens_mes"] == REDACTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {TENANT_KEY}.", f"key {REDACTED}."),
        ("sk-abcdefghijklmnop1234 sk-short", f"{REDACTED} sk-short"),
        ("task-reminder-scheduled-daily", "task-reminder-scheduled-daily"),
        (f"jwt={JWT}", f"jwt={REDACTED}"),
        (f"got {JWT}!", f"got {REDACTED}!"),
        ("authorization: bearer abc.def-ghi", f"authorization: {REDACTED}"),
        ("header Bearer abc.def-ghi=", f"header Bearer {REDACTED}"),
        ("GET /webhook?apikey=k1&api_key=k2&secret=s&key=k HTTP/1.1", None),
        ("https://h/cb#access_token=abc&state=1", f"https://h/cb#access_token={REDACTED}&state=1"),
        ("redis://:hunter22pw@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        ("postgresql://app:p@ss@db/x", f"postgresql://app:{REDACTED}@db/x"),
        ("https://host:8080/path@x", "https://host:8080/path@x"),
        (
            '{"apikey": "ABC 123", "instance": "acme"}',
            f'{{"apikey": "{REDACTED}", "instance": "acme"}}',
        ),
        ('body={"apikey": "cut-in-the-mid', f'body={{"apikey": "{REDACTED}"'),
        (
            "{'key-openai': 'zzz', 'x-api-key': 'yyy'}",
            f"{{'key-openai': '{REDACTED}', 'x-api-key': '{REDACTED}'}}",
        ),
        ("tokens_usados=123 max_tokens: 50", "tokens_usados=123 max_tokens: 50"),
        ("evolution_token=abcdef password=", f"evolution_token={REDACTED} password="),
        ("webhook secret invalid for instance acme", "webhook secret invalid for instance acme"),
    ],
)
def test_patterns_in_text(text: str, expected: str | None) -> None:
    result = redact(text)
    if expected is None:
        assert "k1" not in result
        assert "k2" not in result
        assert "=s&" not in result
        assert result.endswith(f"key={REDACTED} HTTP/1.1")
    else:
        assert result == expected


# --- Properties ---------------------------------------------------------------------------------


@given(
    secret=st.text(alphabet=KEY_CHARS, min_size=6, max_size=64),
    prefix=st.text(max_size=60),
    suffix=st.text(max_size=60),
)
def test_redact_never_leaves_a_registered_secret(secret: str, prefix: str, suffix: str) -> None:
    with isolated_secrets():
        add_secret(secret)
        assert secret not in redact(prefix + secret + suffix)


@given(
    key=st.text(alphabet=KEY_CHARS, min_size=16, max_size=60),
    prefix=st.text(max_size=40),
    suffix=st.text(alphabet=" .,;:!?)]}\"'\n", max_size=5),
)
def test_any_openai_style_key_is_removed(key: str, prefix: str, suffix: str) -> None:
    text = f"{prefix} sk-{key}{suffix}"
    assert f"sk-{key}" not in redact(text)


FRAGMENTS = [
    "sk-",
    "SK-",
    "eyJ",
    "Bearer ",
    "bearer\t",
    "://",
    "user:",
    "@",
    "?",
    "&",
    "#",
    "=",
    ":",
    " ",
    '"',
    "'",
    "apikey",
    "Api-Key",
    "token",
    "TOKEN",
    "tokens_",
    "_tokens",
    "secret",
    "password",
    "passwd",
    "Authorization",
    "jwt",
    "key-openai",
    "service_key",
    "cookie",
    "sig",
    "key",
    ".",
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "-",
    "_",
]


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=25).map("".join))
def test_the_quick_prefilter_never_skips_a_match(text: str) -> None:
    assert redmod._redact(text, None) == redmod._PATTERN.sub(redmod._replace, text)
