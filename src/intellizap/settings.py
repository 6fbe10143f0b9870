"""The one settings object. Nothing else in the code base reads ``os.environ``.

Every value has a safe development default; ``ENV=production`` refuses values that would be
unsafe there (see :meth:`Settings.production_problems`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_MIN_SECRET_LENGTH = 16
#: Evolution answers a send within a few of its WhatsApp queries (each times out after 60 s).
_MIN_SEND_OUTCOME_WAIT = 120


class Settings(BaseSettings):
    """Configuration from the environment and an optional ``.env`` file."""

    # An empty variable (`WEBHOOK_SECRET=` in a compose file) is unset, never an empty secret:
    # credentials derived from an empty key would be anyone's to compute.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # An empty variable (`WEBHOOK_JWT_KEY=` in .env, `${VAR:-}` in compose) means unset,
        # not "a secret of length 0" nor "the URL ''".
        env_ignore_empty=True,
    )

    # -- application --------------------------------------------------------------------------
    env: Literal["development", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # -- metrics (/metrics; see intellizap.observability.server) --------------------------------
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="serve /metrics on this port only (every process, the worker too)",
    )
    metrics_host: str = Field(default="127.0.0.1", description="where METRICS_PORT listens")
    metrics_token: SecretStr | None = Field(
        default=None, description="bearer token /metrics requires (production: required on PORT)"
    )

    # -- database -----------------------------------------------------------------------------
    database_url: SecretStr | None = None
    """Unset: an embedded PostgreSQL under ``data_dir``. On Supabase: the session pooler
    (port 5432) or the direct connection string; not the transaction pooler (port 6543)."""
    data_dir: Path = Path(".intellizap")
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_connect_timeout: float = Field(default=5.0, gt=0)

    # -- Supabase (the frontend's project; the backend talks to its database directly) ---------
    supabase_url: str | None = None
    supabase_service_key: SecretStr | None = None
    supabase_jwt_secret: SecretStr | None = None
    cors_origins: str = Field(
        default="",
        description="comma-separated browser origins allowed to call /api/ (the frontend's URL)",
    )

    # -- webhook --------------------------------------------------------------------------------
    webhook_secret: SecretStr | None = None
    webhook_jwt_key: SecretStr | None = None
    webhook_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    webhook_legacy_secret: SecretStr | None = Field(
        default=None,
        description="rollout grace period: the old shared webhook secret, accepted for every "
        "instance while set (docs/security.md); WEBHOOK_SECRET must then be a new one",
    )
    webhook_legacy_jwt_key: SecretStr | None = Field(
        default=None, description="rollout grace period: the old shared JWT key, likewise"
    )
    webhook_apikey_auth: bool = Field(
        default=True,
        description="accept the body's apikey (instance token or EVOLUTION_API_KEY); off: a "
        "request without header/URL credentials gets 401 before its body is read",
    )
    webhook_body_budget_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="webhook bodies held in memory at once (one instance: a quarter of it)",
    )
    webhook_unauthenticated_budget_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="bodies held only to check their apikey; beyond it: 503 at once",
    )
    webhook_unauthenticated_read_seconds: float = Field(
        default=30.0, gt=0, le=600, description="an unauthenticated body slower than this: 408"
    )
    public_url: str | None = Field(
        default=None,
        description="the service's URL as Evolution reaches it (`intellizap webhook` uses it)",
    )
    webhook_rate_per_instance: float = Field(
        default=200.0, gt=0, description="sustained webhook requests per second per instance"
    )
    webhook_burst_per_instance: int = Field(default=2000, ge=1)
    tenant_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=10,
        description="how stale tenant/group configuration may be (the frontend writes it directly)",
    )

    # -- Evolution API --------------------------------------------------------------------------
    evolution_api_url: str = "http://127.0.0.1:8080"
    evolution_api_key: SecretStr | None = None
    evolution_api_version: Literal[1, 2] = 2

    # -- OpenAI-compatible LLM and Whisper ------------------------------------------------------
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    summary_model: str = "gpt-4o-mini"
    transcription_model: str = "whisper-1"
    llm_max_wait_seconds: float = Field(
        default=30,
        ge=0,
        le=600,
        description="how long a call may wait in the worker for the provider's rate limit; "
        "longer waits put the job back in the queue instead",
    )

    # -- job queue ------------------------------------------------------------------------------
    # Sized so that one process stays CPU-bound through a peak minute: jobs taken together are
    # answered together, so slots must cover the waves, not only the mean (bench/burst.py).
    worker_concurrency: int = Field(
        default=250,
        ge=1,
        le=1000,
        description="jobs one worker runs at once; they mostly wait on the LLM and Evolution",
    )
    job_queue_pool_size: int = Field(
        default=4,
        ge=2,
        le=100,
        description="connections of the job queue's own pool per process (LISTEN is apart)",
    )
    job_poll_seconds: float = Field(
        default=2.0, gt=0, le=60, description="polling backstop when LISTEN/NOTIFY is lost"
    )
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    stalled_job_seconds: float = Field(
        default=60.0, gt=0, description="a job whose worker is silent this long is run again"
    )

    # -- sending to WhatsApp ------------------------------------------------------------------
    send_min_interval_seconds: float = Field(
        default=3.0, ge=0, description="minimum time between two sends of one instance"
    )
    send_max_chars: int = Field(default=3500, ge=200, description="longer texts are split")
    send_outcome_wait_seconds: float = Field(
        default=300,
        gt=0,
        le=3600,
        description="how long a send whose outcome is unknown waits for proof before posting again",
    )

    # -- transcription --------------------------------------------------------------------------
    transcription_max_seconds: int = Field(
        default=900, ge=1, description="longer voice notes are not transcribed (cost cap)"
    )
    transcription_max_upload_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1024, description="the provider's file size limit"
    )
    transcription_chunk_seconds: int = Field(
        default=600, ge=10, description="audio longer than this is split before upload"
    )
    transcription_concurrency: int = Field(
        default=4,
        ge=1,
        le=100,
        description="voice notes one worker decodes and uploads at once (memory and ffmpeg CPU)",
    )

    # -- summaries ------------------------------------------------------------------------------
    summary_max_window_hours: float = Field(default=24, gt=0, le=24 * 31)
    summary_min_messages: int = Field(default=5, ge=1)
    summary_catchup_hours: float = Field(
        default=3,
        le=23,
        description="how late a scheduled summary is still sent (after downtime, or while the "
        "LLM provider throttles)",
    )
    summary_input_token_budget: int = Field(
        default=60_000, ge=2_000, description="above this the transcript is map-reduced"
    )
    summary_max_output_tokens: int = Field(default=1_500, ge=100)
    summary_on_demand_minutes: float = Field(default=10, ge=0)

    # -- product defaults -----------------------------------------------------------------------
    default_timezone: str = "America/Sao_Paulo"
    retention_days: int = Field(default=30, ge=1)

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. America/Sao_Paulo)") from exc
        return value

    @field_validator("evolution_api_version", mode="before")
    @classmethod
    def _version_from_text(cls, value: object) -> object:
        # The environment gives "1"/"2"; a Literal of ints does not coerce text by itself.
        return int(value) if isinstance(value, str) and value.strip() in ("1", "2") else value

    @field_validator("summary_catchup_hours")
    @classmethod
    def _catch_up_at_least_an_hour(cls, value: float) -> float:
        if value < 1:
            raise ValueError(
                "must be at least 1 (hours): it is how late a scheduled summary may still be "
                "written and sent, so below 1 hour the scheduler would skip summaries that are "
                "merely a few minutes late and a throttled LLM provider would lose them"
            )
        return value

    @field_validator("evolution_api_url", "openai_base_url", "supabase_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        origins = [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        for origin in origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(
                    f"{origin!r} is not an origin: use scheme://host[:port], e.g. "
                    "https://app.intellizap.com.br, separated by commas"
                )
        return ",".join(origins)

    @property
    def cors_origin_list(self) -> list[str]:
        return self.cors_origins.split(",") if self.cors_origins else []

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction step."""
        secrets = [
            value.get_secret_value()
            for value in (
                self.webhook_secret,
                self.webhook_jwt_key,
                self.webhook_legacy_secret,
                self.webhook_legacy_jwt_key,
                self.evolution_api_key,
                self.openai_api_key,
                self.supabase_service_key,
                self.supabase_jwt_secret,
                self.metrics_token,
            )
            if value is not None
        ]
        if self.database_url is not None:
            password = urlsplit(self.database_url.get_secret_value()).password
            if password:
                secrets.append(password)
        return secrets

    def _legacy_problems(self) -> list[str]:
        """The old shared secrets were shown to every customer (Evolution's /webhook/find): the
        per-instance credentials must come from new master secrets."""
        problems = []
        for current, legacy, name in (
            (self.webhook_secret, self.webhook_legacy_secret, "SECRET"),
            (self.webhook_jwt_key, self.webhook_legacy_jwt_key, "JWT_KEY"),
        ):
            if (
                current is not None
                and legacy is not None
                and current.get_secret_value() == legacy.get_secret_value()
            ):
                problems.append(
                    f"WEBHOOK_{name} equals WEBHOOK_LEGACY_{name}: every customer could read the "
                    f"old shared value, and the per-instance credentials are derived from "
                    f"WEBHOOK_{name}; set WEBHOOK_{name} to a new random value (docs/security.md)"
                )
        return problems

    def production_problems(self) -> list[str]:
        """What makes this configuration unsafe for production, each with what to set."""
        if not self.is_production:
            return []
        problems: list[str] = []
        if self.webhook_secret is None and self.webhook_jwt_key is None:
            problems.append(
                "webhook authentication is off: set WEBHOOK_SECRET (sent by Evolution in the "
                "X-Webhook-Secret header) and/or WEBHOOK_JWT_KEY (Evolution >= 2.3 jwt_key)"
            )
        problems += self._legacy_problems()
        for name, value in (
            ("WEBHOOK_SECRET", self.webhook_secret),
            ("WEBHOOK_JWT_KEY", self.webhook_jwt_key),
            ("SUPABASE_JWT_SECRET", self.supabase_jwt_secret),
            ("METRICS_TOKEN", self.metrics_token),
        ):
            if value is not None and len(value.get_secret_value()) < _MIN_SECRET_LENGTH:
                problems.append(
                    f"{name} is too short: use at least {_MIN_SECRET_LENGTH} random characters "
                    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
                )
        if self.database_url is None:
            problems.append(
                "DATABASE_URL is not set: production never uses the embedded database; set it to "
                "your Supabase session-pooler or direct connection string"
            )
        elif urlsplit(self.database_url.get_secret_value()).port == 6543:
            problems.append(
                "DATABASE_URL points at Supabase's transaction pooler (port 6543), which breaks "
                "LISTEN/NOTIFY and prepared statements: use the session pooler (port 5432) or the "
                "direct connection string"
            )
        if self.openai_base_url.startswith("http://") and "127.0.0.1" not in self.openai_base_url:
            problems.append("OPENAI_BASE_URL must use https in production")
        if self.supabase_url is not None and not self.supabase_url.startswith("https://"):
            problems.append(
                "SUPABASE_URL must use https in production (the keys that verify users' tokens "
                "are fetched from it)"
            )
        if self.log_level == "DEBUG":
            problems.append("LOG_LEVEL=DEBUG is not allowed in production: use INFO or WARNING")
        if self.send_outcome_wait_seconds < _MIN_SEND_OUTCOME_WAIT:
            problems.append(
                f"SEND_OUTCOME_WAIT_SECONDS={self.send_outcome_wait_seconds:g} is too short: "
                "Evolution may still be delivering a message that long after the request; use "
                f"at least {_MIN_SEND_OUTCOME_WAIT} (the default is 300)"
            )
        return problems


class ConfigurationError(RuntimeError):
    """The configuration cannot be used; the message says what to set."""


def check_for_production(settings: Settings) -> None:
    """Raise :class:`ConfigurationError` listing every unsafe production setting."""
    problems = settings.production_problems()
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigurationError(f"refusing to start with ENV=production:\n{listing}")


def describe_invalid(error: ValidationError) -> str:
    """A settings validation error as ``NAME: what is wrong``, one line per variable. The values
    are never repeated: a key pasted into the wrong variable is still a secret."""
    lines = []
    for problem in error.errors():
        name = "_".join(str(part) for part in problem["loc"]).upper() or "settings"
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"configuration error: {name}: {message}")
    lines.append("fix it in the environment or in .env (README.md, section Configuration)")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. An invalid value is a :class:`ConfigurationError`
    naming the variable and what is wrong, not a traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe_invalid(exc)) from None
