"""How configuration and connection problems are worded: the variable, what is wrong, what to
do — never a secret's value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from intellizap.commands.preflight import connection_problem
from intellizap.settings import Settings, describe_invalid


def problem(**values: object) -> str:
    with pytest.raises(ValidationError) as error:
        Settings(_env_file=None, **values)  # type: ignore[call-arg]
    return describe_invalid(error.value)


def test_each_invalid_variable_is_one_line_with_its_value() -> None:
    message = problem(port="abc", log_level="verbose")
    lines = message.splitlines()
    assert len(lines) == 3
    assert any(line.startswith("configuration error: PORT: ") for line in lines)
    assert any(line.startswith("configuration error: LOG_LEVEL: Input should be") for line in lines)
    assert "README.md" in lines[-1]


def test_no_value_is_repeated_secret_or_not() -> None:
    """A key pasted into the wrong variable is still a secret: values are never shown."""
    message = problem(webhook_secret=12345678901234567890123, port="sk-pasted-by-mistake")
    assert "12345678901234567890123" not in message
    assert "sk-pasted-by-mistake" not in message
    assert "WEBHOOK_SECRET: " in message
    assert "PORT: " in message


def test_our_validators_messages_are_shown_without_pydantic_prefix() -> None:
    message = problem(default_timezone="Mars/Olympus")
    assert "DEFAULT_TIMEZONE: unknown IANA time zone" in message
    assert "Value error" not in message


def test_empty_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_JWT_KEY", "")
    monkeypatch.setenv("SUPABASE_URL", "")
    monkeypatch.setenv("METRICS_PORT", "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.webhook_jwt_key is None
    assert settings.supabase_url is None
    assert settings.metrics_port is None


URL = "postgresql://postgres.ref:pa55word@aws-0-sa-east-1.pooler.supabase.com:5432/postgres"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ('password authentication failed for user "postgres.ref"', "refused the password"),
        ('could not translate host name "x" to address', "does not resolve"),
        ("connection refused", "cannot connect"),
        ("Connection refused\n\tIs the server running", "nothing accepts connections"),
        ("timeout expired", "no answer from aws-0-sa-east-1.pooler.supabase.com:5432"),
        ('database "nope" does not exist', "has no database 'nope'"),
    ],
)
def test_connection_problems_say_what_to_check(error: str, expected: str) -> None:
    message = connection_problem(RuntimeError(error), URL)
    assert message.startswith("DATABASE_URL: ")
    assert expected in message
    assert "pa55word" not in message
    assert len(message.splitlines()) <= 2
