"""Settings: development defaults are usable, production refuses unsafe values with advice."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from intellizap.settings import ConfigurationError, Settings, check_for_production, get_settings

SAFE_PRODUCTION: dict[str, Any] = {
    "env": "production",
    "database_url": "postgresql://postgres.abc:pw-123456@aws-0-sa-east-1.pooler.supabase.com:5432/postgres",
    "webhook_secret": "a" * 32,
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_development_defaults_need_no_configuration() -> None:
    s = settings()
    assert s.uses_embedded_database
    assert s.production_problems() == []
    check_for_production(s)


def test_safe_production_configuration_starts() -> None:
    check_for_production(settings(**SAFE_PRODUCTION))
    check_for_production(
        settings(
            **SAFE_PRODUCTION,
            supabase_url="https://project.supabase.co",
            supabase_jwt_secret="s" * 40,
        )
    )


@pytest.mark.parametrize(
    ("change", "advice"),
    [
        ({"webhook_secret": None}, "WEBHOOK_SECRET"),
        ({"webhook_secret": "short"}, "too short"),
        ({"database_url": None}, "DATABASE_URL is not set"),
        (
            {"database_url": "postgresql://u:p@aws-0-sa-east-1.pooler.supabase.com:6543/postgres"},
            "transaction pooler",
        ),
        ({"log_level": "DEBUG"}, "LOG_LEVEL"),
        ({"supabase_jwt_secret": "short"}, "SUPABASE_JWT_SECRET is too short"),
        ({"supabase_url": "http://project.supabase.co"}, "SUPABASE_URL must use https"),
    ],
)
def test_production_refuses_unsafe_values_saying_what_to_set(
    change: dict[str, Any], advice: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        check_for_production(settings(**{**SAFE_PRODUCTION, **change}))
    assert advice in str(error.value)
    assert "pw-123456" not in str(error.value)


def test_jwt_key_alone_is_enough_webhook_authentication() -> None:
    check_for_production(
        settings(**{**SAFE_PRODUCTION, "webhook_secret": None, "webhook_jwt_key": "k" * 32})
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("default_timezone", "Mars/Olympus"),
        ("evolution_api_url", "evo.example.com"),
        ("supabase_url", "project.supabase.co"),
        ("cors_origins", "https://app.example.com/dashboard"),
        ("cors_origins", "app.example.com"),
        ("port", 0),
    ],
)
def test_invalid_values_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        settings(**{field: value})


def test_cors_origins_are_a_comma_separated_list_of_origins() -> None:
    configured = settings(cors_origins=" https://app.example.com/ ,http://localhost:5173,")
    assert configured.cors_origin_list == ["https://app.example.com", "http://localhost:5173"]
    assert settings().cors_origin_list == []


def test_secret_values_include_the_database_password() -> None:
    assert "pw-123456" in settings(**SAFE_PRODUCTION).secret_values()


@pytest.mark.parametrize("hours", [0, 0.5, -1])
def test_a_catch_up_window_under_an_hour_is_refused_saying_why(hours: float) -> None:
    """Before: 0 was accepted and silently stopped every scheduled summary."""
    with pytest.raises(ValidationError) as error:
        settings(summary_catchup_hours=hours)
    assert "at least 1" in str(error.value)


def test_an_invalid_environment_value_is_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUMMARY_CATCHUP_HOURS", "0")
    monkeypatch.setenv("WEBHOOK_MAX_BYTES", "sk-pasted-here-by-mistake")
    monkeypatch.chdir("/")  # no .env
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as error:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(error.value)
    assert "SUMMARY_CATCHUP_HOURS: must be at least 1" in message
    assert "WEBHOOK_MAX_BYTES" in message
    assert "sk-pasted-here-by-mistake" not in message  # values may be secrets


def test_worker_defaults_are_sized_for_jobs_that_mostly_wait() -> None:
    defaults = settings()
    assert defaults.worker_concurrency >= 50
    assert defaults.database_pool_size < defaults.worker_concurrency
    assert 1 <= defaults.transcription_concurrency < defaults.worker_concurrency
