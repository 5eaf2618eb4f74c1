"""Configuration: environment (pydantic-settings) plus the desk's TOML file.

This is the only module that reads the process environment. Everything else receives a `Config`.
Environment variables carry deployment facts and secrets (README, Configuration); the TOML file
carries the desk's rules, sources and routes. They are two models because a TOML section such
as `[email]` would otherwise be read from an `EMAIL` environment variable, which many machines
set.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.stories.model import Sentiment

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> timedelta:
    """Turn "30s", "5m", "24h" or a number of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text such as '30s', '5m', '24h'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration such as '30s', '5m' or '24h'")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
# A duration where zero means nothing sensible (a lease, a timeout, a poll interval): "0s" is
# refused by name rather than read as "off" or as "at once, forever".
def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


PositiveDuration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
Impact = Annotated[float, Field(ge=1, le=10)]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/London)"
        ) from None
    return name


TimeZoneName = Annotated[str, BeforeValidator(_zone)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RulesConfig(_Section):
    min_impact: Impact = 8
    min_sources: int = Field(default=2, ge=1)
    max_alert_age: Duration = timedelta(hours=24)


class SourceConfig(_Section):
    kind: Literal["file", "http"]
    path: Path | None = None
    url: str | None = None
    poll_interval: PositiveDuration = timedelta(seconds=30)
    timeout: PositiveDuration = timedelta(seconds=10)  # http: the longest a poll may take

    @model_validator(mode="after")
    def _needs_location(self) -> SourceConfig:
        if self.kind == "file" and self.path is None:
            raise ValueError("a file source needs `path`")
        if self.kind == "http" and not self.url:
            raise ValueError("an http source needs `url`")
        return self


class DeliveryConfig(_Section):
    max_attempts: int = Field(default=8, ge=1)
    lease: PositiveDuration = timedelta(seconds=60)
    retry_base: Duration = timedelta(seconds=2)
    retry_cap: Duration = timedelta(minutes=30)
    workers: int = Field(default=4, ge=1, le=64)


_CHANNEL = re.compile(r"^[CGDU][A-Z0-9]{2,}$")
_HOUR = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_QUIET = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


class RouteConfig(_Section):
    channel: str
    topics: tuple[str, ...] = ()
    min_impact: Impact | None = None
    min_sources: int | None = Field(default=None, ge=1)
    sentiments: tuple[Sentiment, ...] = ()
    batch_window: Duration | None = None
    quiet_hours: str | None = None
    timezone: TimeZoneName = "UTC"
    break_through_impact: Impact = 10

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str) -> str:
        if not _CHANNEL.match(value):
            raise ValueError(f"{value!r} is not a Slack channel ID (like C0SPACEOPS)")
        return value

    @field_validator("topics")
    @classmethod
    def _lower_topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in value)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None  # quiet_hours = "" is written to say "none", as an absent key does
        if value is not None and not _QUIET.match(value):
            raise ValueError(f"{value!r} is not a range such as '22:00-07:00'")
        return value


def _command(value: str) -> str:
    if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
        raise ValueError(f"{value!r} is not a slash command such as '/story'")
    return value


Command = Annotated[str, BeforeValidator(_command)]


class CommandNames(_Section):
    """Slash command names, as registered in the Slack app (configurable)."""

    story: Command = "/story"
    actionitems: Command = "/actionitems"
    alerts: Command = "/alerts"


class SlackConfig(_Section):
    commands: CommandNames = CommandNames()
    admins: tuple[str, ...] = ()  # user IDs allowed to change channel routes; empty = anyone
    pacing: Duration = timedelta(seconds=1)
    batch_window: Duration = timedelta(seconds=30)
    timeout: PositiveDuration = timedelta(seconds=10)  # the longest one Web API call may take
    routes: tuple[RouteConfig, ...] = ()


class EmailConfig(_Section):
    batch_window: Duration = timedelta(seconds=30)
    digest_hour: str = "07:00"
    send_empty_digest: bool = False
    connections: int = Field(default=1, ge=1, le=16)  # SMTP sessions open at once

    @field_validator("digest_hour")
    @classmethod
    def _hour(cls, value: str) -> str:
        if not _HOUR.match(value):
            raise ValueError(f"{value!r} is not a time of day as HH:MM, e.g. \"07:00\"")
        return value


class DeskConfig(_Section):
    """The TOML file: rules, sources, delivery, Slack routes and email defaults."""

    rules: RulesConfig = RulesConfig()
    sources: tuple[SourceConfig, ...] = ()
    delivery: DeliveryConfig = DeliveryConfig()
    slack: SlackConfig = SlackConfig()
    email: EmailConfig = EmailConfig()


def _secret(name: str) -> Any:
    return Field(None, validation_alias=AliasChoices(name, name.lower()))


class Settings(BaseSettings):
    """Deployment settings from the environment and `.env`, named as in the README's table."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    slack_bot_token: SecretStr | None = _secret("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _secret("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _secret("SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    database_url: SecretStr = Field(
        SecretStr("sqlite:///var/alertbot.db"), validation_alias="DATABASE_URL"
    )
    smtp_host: str | None = Field(None, validation_alias="SMTP_HOST")
    smtp_port: int | None = Field(None, validation_alias="SMTP_PORT", ge=1, le=65535)
    smtp_username: str | None = Field(None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, validation_alias="SMTP_PASSWORD")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", validation_alias="SMTP_SECURITY"
    )
    email_from: str = Field("alertbot@localhost", validation_alias="EMAIL_FROM")
    config_path: Path = Field(Path("config/alertbot.toml"), validation_alias="ALERTBOT_CONFIG")
    ingest_token: SecretStr | None = Field(None, validation_alias="ALERTBOT_INGEST_TOKEN")
    secret_key: SecretStr | None = Field(None, validation_alias="ALERTBOT_SECRET_KEY")
    public_url: str = Field("http://127.0.0.1:8000", validation_alias="ALERTBOT_PUBLIC_URL")
    http_host: str = Field("127.0.0.1", validation_alias="ALERTBOT_HTTP_HOST")
    http_port: int = Field(8000, validation_alias="ALERTBOT_HTTP_PORT", ge=0, le=65535)
    outbox_dir: Path = Field(Path("var/outbox"), validation_alias="ALERTBOT_OUTBOX_DIR")

    @field_validator(
        "slack_bot_token", "slack_signing_secret", "slack_app_token", "smtp_password",
        "ingest_token", "secret_key", "smtp_host", "smtp_username", mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `SLACK_BOT_TOKEN=` in a .env file means "not configured", not "an empty token".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _one_key_for_every_replica(self) -> Settings:
        # A key generated into each replica's var/ would sign links the others refuse, and
        # readers could not unsubscribe: PostgreSQL (where replicas run) needs it given.
        if self.secret_key is None and not self.database_url.get_secret_value().startswith(
                "sqlite"):
            raise ValueError(
                "ALERTBOT_SECRET_KEY (or ALERTBOT_SECRET_KEY_FILE) is required with a "
                "PostgreSQL DATABASE_URL, so that every replica signs unsubscribe links with "
                "the same key; make one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`")
        return self


@dataclass(frozen=True)
class Config:
    """Everything the service knows about its deployment, read once at start."""

    settings: Settings
    desk: DeskConfig
    config_file: Path | None  # None when the TOML file does not exist (embedded defaults)


class ConfigError(Exception):
    """A setting is wrong; the message names it and where it came from."""


def _describe(error: ValidationError, origin: str) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])  # empty: about several settings
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return f"invalid setting in {origin}: " + "; ".join(problems)


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    # Relative paths in the TOML resolve against the TOML file's folder.
    for source in raw.get("sources", []):
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            path = Path(source["path"])
            source["path"] = str(path if path.is_absolute() else base / path)
    return raw


def load_desk(path: Path) -> DeskConfig:
    """Read and validate the TOML file at `path`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from exc
    try:
        return DeskConfig.model_validate(_resolve_paths(raw, path.resolve().parent))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path))) from exc


# Secrets that may come from a file instead (Docker and Kubernetes secrets): NAME_FILE=/path.
SECRET_FILES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SMTP_PASSWORD",
                "DATABASE_URL", "ALERTBOT_INGEST_TOKEN", "ALERTBOT_SECRET_KEY")


def _secret_files() -> dict[str, str]:
    """The values of secrets given as `NAME_FILE`: the file's text without its final newline."""
    found: dict[str, str] = {}
    for name in SECRET_FILES:
        path = os.environ.get(f"{name}_FILE")
        if not path:
            continue
        if os.environ.get(name):
            raise ConfigError(f"both {name} and {name}_FILE are set: keep one")
        try:
            found[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{name}_FILE: cannot read {path}: {reason}") from None
    return found


def load_config(**overrides: Any) -> Config:
    """Read the environment, `.env`, secret files and the TOML file; raise ConfigError naming
    a bad setting."""
    overrides = {**_secret_files(), **overrides}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "the environment or .env")) from exc
    path = settings.config_path
    explicit = "config_path" in overrides or "ALERTBOT_CONFIG" in _environ_keys()
    if not path.exists() and not explicit:
        return Config(settings, DeskConfig(), None)
    return Config(settings, load_desk(path), path)


def _environ_keys() -> set[str]:
    return {key.upper() for key in os.environ}
