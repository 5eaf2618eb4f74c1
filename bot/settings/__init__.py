"""Configuration: environment (pydantic-settings) plus the desk's TOML file.

This package is the only reader of the process environment. Everything else receives a
`Config`. Environment variables carry deployment facts and secrets (README, Configuration;
`environment.py`); the TOML file carries the desk's rules, sources and routes (`desk.py`), in
the value types of `values.py`. This module reads both, once, and names a bad setting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.settings.desk import (
    CommandNames,
    DeliveryConfig,
    DeskConfig,
    EmailConfig,
    RouteConfig,
    RulesConfig,
    SlackConfig,
    SourceConfig,
)
from bot.settings.environment import Settings
from bot.settings.values import (
    Command,
    Duration,
    Impact,
    PositiveDuration,
    TimeZoneName,
    parse_duration,
)

__all__ = [
    "SECRET_FILES", "Command", "CommandNames", "Config", "ConfigError", "DeliveryConfig",
    "DeskConfig", "Duration", "EmailConfig", "Impact", "PositiveDuration", "RouteConfig",
    "RulesConfig", "Settings", "SlackConfig", "SourceConfig", "TimeZoneName", "load_config",
    "load_desk", "parse_duration",
]


@dataclass(frozen=True)
class Config:
    """Everything the service knows about its deployment, read once at start."""

    settings: Settings
    desk: DeskConfig
    config_file: Path | None  # None when the TOML file does not exist (embedded defaults)


class ConfigError(Exception):
    """A setting is wrong; the message names it and where it came from."""


def _describe(error: ValidationError, origin: str,
              rename: Callable[[str], str] = lambda part: part) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(rename(str(part)) for part in item["loc"])  # empty: several settings
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return f"invalid setting in {origin}: " + "; ".join(problems)


def _environment_name(part: str) -> str:
    """A deployment setting left at its default is reported by its field's name: named as the
    operator would write it instead (`database_url` → DATABASE_URL)."""
    field = Settings.model_fields.get(part)
    alias = field.validation_alias if field is not None else None
    return alias if isinstance(alias, str) else part


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
        raise ConfigError(_describe(exc, "the environment or .env", _environment_name)) from exc
    path = settings.config_path
    explicit = "config_path" in overrides or "ALERTBOT_CONFIG" in _environ_keys()
    if not path.exists() and not explicit:
        return Config(settings, DeskConfig(), None)
    return Config(settings, load_desk(path), path)


def _environ_keys() -> set[str]:
    return {key.upper() for key in os.environ}
