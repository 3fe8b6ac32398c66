"""Service settings from the environment (and an optional .env), checked before anything starts."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

# Each setting's environment variable and how to fix a bad value, for start-up errors.
SETTING_HELP: dict[str, tuple[str, str]] = {
    "database_url": (
        "DATABASE_URL",
        "use postgresql://user:pass@host:5432/db, or unset it to use the embedded Postgres",
    ),
    "migration_database_url": (
        "MIGRATION_DATABASE_URL",
        "use postgresql://owner:pass@host:5432/db for the role owning the schema, or unset it "
        "to migrate as DATABASE_URL's role",
    ),
    "host": ("AGENT_HOST", "use an address such as 127.0.0.1 or 0.0.0.0"),
    "port": ("AGENT_PORT", "use a port number between 1 and 65535"),
    "workers": ("AGENT_WORKERS", "use a number of worker processes between 1 and 64"),
    "planning_slots": (
        "AGENT_PLANNING_SLOTS",
        "use how many new workflows may plan at once per process, between 1 and 1000",
    ),
    "config_dir": ("AGENT_CONFIG_DIR", "point it at the folder holding catalog.yml and hitl/"),
    "data_dir": ("AGENT_DATA_DIR", "point it at a writable folder"),
    "llm_base_url": (
        "LLM_BASE_URL",
        "use the http(s) URL of an OpenAI-compatible API, or unset it for the offline planner",
    ),
    "llm_model": ("LLM_MODEL", "name the model the endpoint serves"),
    "llm_api_key": ("LLM_API_KEY", "set the key the endpoint expects"),
    "llm_timeout_s": ("LLM_TIMEOUT_S", "use seconds between 1 and 600"),
    "langsmith_tracing": ("LANGSMITH_TRACING", "use true or false"),
    "langsmith_endpoint": ("LANGSMITH_ENDPOINT", "use the http(s) URL of the LangSmith API"),
    "environments_file": ("AGENT_ENVIRONMENTS_FILE", "point it at an environments YAML file"),
    "principals_file": ("AGENT_PRINCIPALS_FILE", "point it at a principals YAML file"),
    "sweep_interval_s": ("AGENT_SWEEP_INTERVAL_S", "use seconds between 0.2 and 3600"),
    "recovery_grace_s": ("AGENT_RECOVERY_GRACE_S", "use seconds between 0 and 3600"),
    "dry_run": ("AGENT_DRY_RUN", "use true or false"),
    "log_level": ("LOG_LEVEL", "use one of DEBUG, INFO, WARNING, ERROR"),
    "db_pool_max": ("DB_POOL_MAX", "use a pool size between 2 and 200"),
    "db_pool_timeout_s": ("DB_POOL_TIMEOUT_S", "use seconds between 0.5 and 120"),
    "db_prepared_statements": ("DB_PREPARED_STATEMENTS", "use true or false"),
    "max_body_bytes": ("AGENT_MAX_BODY_BYTES", "use a size in bytes between 1024 and 16777216"),
    "body_timeout_s": ("AGENT_BODY_TIMEOUT_S", "use seconds between 0.5 and 300"),
    "auth_failures_per_minute": (
        "AGENT_AUTH_FAILURES_PER_MINUTE",
        "use a number of wrong keys per client address and minute between 1 and 10000",
    ),
    "metrics_token": (
        "METRICS_TOKEN",
        "use a random string of at least 16 characters, the same as the scraper's bearer token",
    ),
    "alert_webhook_token": (
        "AGENT_ALERT_WEBHOOK_TOKEN",
        "use a random string of at least 16 characters (python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'), the same in Alertmanager's http_config",
    ),
    "alert_webhook_secret": (
        "AGENT_ALERT_WEBHOOK_SECRET",
        "use a random string of at least 16 characters, or unset it to skip signatures",
    ),
    "sentry_client_secret": (
        "AGENT_SENTRY_CLIENT_SECRET",
        "copy the Client Secret of the Sentry integration (Settings > Developer Settings)",
    ),
    "github_webhook_secret": (
        "AGENT_GITHUB_WEBHOOK_SECRET",
        "use a random string of at least 16 characters, the same as the GitHub webhook's Secret",
    ),
    "sentry_max_age_s": ("AGENT_SENTRY_MAX_AGE_S", "use seconds between 10 and 86400"),
    "webhook_rate_limit": (
        "AGENT_WEBHOOK_RATE_LIMIT",
        "use a rate such as '120/minute' or '10/second' (the limits library's notation)",
    ),
    "webhook_principal_rate_limit": (
        "AGENT_WEBHOOK_PRINCIPAL_RATE_LIMIT",
        "use a rate such as '60/minute' (the limits library's notation)",
    ),
    "trackers_file": (
        "AGENT_TRACKERS_FILE",
        "point it at a trackers YAML file (see docs/integrations.md)",
    ),
    "notifications_file": (
        "AGENT_NOTIFICATIONS_FILE",
        "point it at a notifications YAML file (see docs/notifications.md)",
    ),
    "session_secret": (
        "AGENT_SESSION_SECRET",
        "use a random string of at least 16 characters, the same on every replica, or unset it "
        "to generate one in AGENT_DATA_DIR/inbox-session-secret",
    ),
    "session_max_age_s": ("AGENT_SESSION_MAX_AGE_S", "use seconds between 60 and 604800"),
    "slack_signing_secret": (
        "AGENT_SLACK_SIGNING_SECRET",
        "copy the Signing Secret from the Slack app's Basic Information page",
    ),
    "slack_bot_token": ("AGENT_SLACK_BOT_TOKEN", "copy the xoxb- Bot User OAuth Token"),
    "slack_api_url": ("AGENT_SLACK_API_URL", "use https://slack.com/api/ (the default)"),
    "public_url": (
        "AGENT_PUBLIC_URL",
        "use the http(s) URL people reach the service at, such as https://agent.example.com",
    ),
}


_FIX_BY_VARIABLE = {variable: fix for variable, fix in SETTING_HELP.values()}

MIN_SECRET_LENGTH = 16
_PLACEHOLDER_SECRETS = frozenset({"change-me", "changeme", "secret", "token", "password"})


class SettingsError(Exception):
    """Settings that stop start-up; the message names the variable and the fix."""


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("devops-agent"))


def _default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _default_config_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "config"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    migration_database_url: str | None = Field(
        default=None, validation_alias="MIGRATION_DATABASE_URL"
    )
    """The schema owner's URL for migrations; the service's own pool uses DATABASE_URL."""
    host: str = Field(default="127.0.0.1", validation_alias="AGENT_HOST")
    port: int = Field(default=8080, ge=1, le=65535, validation_alias="AGENT_PORT")
    workers: int = Field(default=1, ge=1, le=64, validation_alias="AGENT_WORKERS")
    planning_slots: int = Field(default=4, ge=1, le=1000, validation_alias="AGENT_PLANNING_SLOTS")
    """How many new workflows plan at once in a process; more wait their turn, in order, for
    15 s at most (then plan anyway, so a hung planner stalls nobody). A decision's resume
    never waits behind them (docs/benchmarks.md: with 16 in flight, approve
    -> execution p99 fell from ~200 ms to ~70 ms at 4, the same throughput)."""
    config_dir: Path = Field(
        default_factory=_default_config_dir, validation_alias="AGENT_CONFIG_DIR"
    )
    data_dir: Path = Field(default_factory=_default_data_dir, validation_alias="AGENT_DATA_DIR")
    db_pool_max: int = Field(default=20, ge=2, le=200, validation_alias="DB_POOL_MAX")
    db_pool_timeout_s: float = Field(
        default=5.0, ge=0.5, le=120, validation_alias="DB_POOL_TIMEOUT_S"
    )
    """How long a request waits for a database connection before answering 503."""
    db_prepared_statements: bool = Field(default=True, validation_alias="DB_PREPARED_STATEMENTS")
    """Prepare a query on a connection once it ran there a few times (Postgres then skips its
    parse and plan). Every query names its columns, so another replica's migration adding one
    does not break a prepared read; turn it off behind a transaction pooler that does not carry
    prepared statements (docs/upstream-limits.md)."""
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, le=16 * 1024 * 1024, validation_alias="AGENT_MAX_BODY_BYTES"
    )
    """The largest request body accepted (413 beyond); the alert webhook allows 1 MB."""
    body_timeout_s: float = Field(
        default=10.0, ge=0.5, le=300, validation_alias="AGENT_BODY_TIMEOUT_S"
    )
    """How long a request body may take to arrive in full (408 beyond)."""
    auth_failures_per_minute: int = Field(
        default=10, ge=1, le=10_000, validation_alias="AGENT_AUTH_FAILURES_PER_MINUTE"
    )
    """Wrong API keys or tokens one client address may send per minute before 429s."""
    metrics_token: SecretStr | None = Field(default=None, validation_alias="METRICS_TOKEN")
    """Bearer token that may read /metrics; an API key always may. Unset, only API keys."""
    llm_base_url: str | None = Field(default=None, validation_alias="LLM_BASE_URL")
    llm_model: str = Field(default="gpt-4o-mini", validation_alias="LLM_MODEL")
    llm_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_timeout_s: float = Field(default=30.0, ge=1, le=600, validation_alias="LLM_TIMEOUT_S")
    """How long one model call may take before the planner falls back to the offline one."""
    langsmith_tracing: bool = Field(
        default=False, validation_alias=AliasChoices("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2")
    )
    langsmith_endpoint: str | None = Field(default=None, validation_alias="LANGSMITH_ENDPOINT")
    langsmith_project: str = Field(default="devops-agent", validation_alias="LANGSMITH_PROJECT")
    log_level: LogLevel = Field(default="INFO", validation_alias="LOG_LEVEL")
    environments_file: Path | None = Field(default=None, validation_alias="AGENT_ENVIRONMENTS_FILE")
    principals_file: Path | None = Field(default=None, validation_alias="AGENT_PRINCIPALS_FILE")
    sweep_interval_s: float = Field(
        default=5.0, ge=0.2, le=3600, validation_alias="AGENT_SWEEP_INTERVAL_S"
    )
    recovery_grace_s: float = Field(
        default=30.0, ge=0.0, le=3600, validation_alias="AGENT_RECOVERY_GRACE_S"
    )
    """How long a workflow may sit idle while planning, or settled but not resumed, before the
    recovery pass of any replica takes it over (its driver is presumed dead)."""
    self_containers: str = Field(default="", validation_alias="AGENT_SELF_CONTAINERS")
    """Comma-separated names of the agent's own containers (always protected)."""
    self_hosts: str = Field(default="", validation_alias="AGENT_SELF_HOSTS")
    """Comma-separated names or addresses of the agent's own hosts (always protected)."""
    dry_run: bool = Field(default=False, validation_alias="AGENT_DRY_RUN")
    alert_webhook_token: SecretStr | None = Field(
        default=None, validation_alias="AGENT_ALERT_WEBHOOK_TOKEN"
    )
    """Bearer token POST /webhook/alerts requires; unset, the endpoint refuses everything."""
    alert_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="AGENT_ALERT_WEBHOOK_SECRET"
    )
    """When set, alert deliveries must also carry X-Signature-256: sha256=<HMAC of the body>."""
    """Run workflows end to end against in-memory executors: nothing real is touched."""
    sentry_client_secret: SecretStr | None = Field(
        default=None, validation_alias="AGENT_SENTRY_CLIENT_SECRET"
    )
    """Sentry signs deliveries with it (Sentry-Hook-Signature); unset, /webhook/sentry is off."""
    github_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="AGENT_GITHUB_WEBHOOK_SECRET"
    )
    """GitHub signs deliveries with it (X-Hub-Signature-256); unset, /webhook/github is off."""
    sentry_max_age_s: float = Field(
        default=300, ge=10, le=86400, validation_alias="AGENT_SENTRY_MAX_AGE_S"
    )
    """A Sentry delivery whose Sentry-Hook-Timestamp is further off than this is stale."""
    webhook_rate_limit: str = Field(
        default="300/minute", validation_alias="AGENT_WEBHOOK_RATE_LIMIT"
    )
    """Deliveries one source (Sentry, GitHub) may make, per replica."""
    webhook_principal_rate_limit: str = Field(
        default="60/minute", validation_alias="AGENT_WEBHOOK_PRINCIPAL_RATE_LIMIT"
    )
    """Deliveries one sender (a Sentry installation, a GitHub repository) may make, per replica."""
    trackers_file: Path | None = Field(default=None, validation_alias="AGENT_TRACKERS_FILE")
    notifications_file: Path | None = Field(
        default=None, validation_alias="AGENT_NOTIFICATIONS_FILE"
    )
    public_url: str = Field(default="http://127.0.0.1:8080", validation_alias="AGENT_PUBLIC_URL")
    """The service's address as people reach it; notifications link to it."""
    session_secret: SecretStr | None = Field(default=None, validation_alias="AGENT_SESSION_SECRET")
    """Signs the inbox's session cookie; unset, one is generated once in the data dir."""
    session_max_age_s: int = Field(
        default=8 * 3600, ge=60, le=7 * 86400, validation_alias="AGENT_SESSION_MAX_AGE_S"
    )
    """How long an inbox sign-in lasts."""
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="AGENT_SLACK_SIGNING_SECRET"
    )
    """Verifies POST /slack/interactivity; unset, the endpoint refuses everything."""
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias="AGENT_SLACK_BOT_TOKEN"
    )
    """Opens the reject-reason dialog (views.open)."""
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias="AGENT_SLACK_API_URL"
    )
    replica_id: str = Field(
        default_factory=_default_replica_id, validation_alias="AGENT_REPLICA_ID"
    )

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"'{value.split('://')[0]}://' is not a Postgres URL")
        return value

    @field_validator("llm_base_url", "langsmith_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("webhook_rate_limit", "webhook_principal_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate") from None
        return value

    @field_validator(
        "alert_webhook_token",
        "alert_webhook_secret",
        "metrics_token",
        "github_webhook_secret",
        "session_secret",
    )
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        if secret.strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError(f"{secret!r} is a placeholder, not a secret")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"a secret of {len(secret)} characters is too easy to guess")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("environments_file", "principals_file", "notifications_file", "trackers_file")
    @classmethod
    def _existing_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value.resolve()  # relative to where the service starts, like every other path

    @field_validator("config_dir")
    @classmethod
    def _existing_dir(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"folder {str(value)!r} does not exist")
        return value.resolve()

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/") + "/"

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @property
    def notifications_path(self) -> Path:
        return self.notifications_file or self.config_dir / "notifications.yml"

    @property
    def trackers_path(self) -> Path:
        return self.trackers_file or self.config_dir / "trackers.yml"

    @property
    def principals_path(self) -> Path:
        return self.principals_file or self.config_dir / "hitl" / "principals.yml"

    @property
    def llm_configured(self) -> bool:
        return self.llm_base_url is not None or self.llm_api_key is not None


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one message a person can act on.

    With AGENT_SECRETS_DIR (compose and Kubernetes mount secrets as files) any setting may
    come from a file in it named after its variable (`database_url`, ...); the environment
    wins over a file.
    """
    secrets_dir = os.environ.get("AGENT_SECRETS_DIR") or None
    if secrets_dir is not None and not Path(secrets_dir).is_dir():
        raise SettingsError(
            f"invalid settings:\n  AGENT_SECRETS_DIR: folder {secrets_dir!r} does not exist; "
            "point it at the folder holding one file per secret setting, or unset it"
        )
    try:
        return Settings(_secrets_dir=secrets_dir, **overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_settings_error(error)) from None


def describe_settings_error(error: ValidationError) -> str:
    lines = ["invalid settings:"]
    for problem in error.errors():
        variable = str(problem["loc"][0]) if problem["loc"] else "?"
        fix = _FIX_BY_VARIABLE.get(variable.upper(), "check its value")
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"  {variable}: {message}; {fix}")
    return "\n".join(lines)
