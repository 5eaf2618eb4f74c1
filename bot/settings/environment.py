"""Deployment settings from the environment and `.env` (README, Configuration).

Environment variables carry deployment facts and secrets; the desk's rules are in the TOML file
(bot/settings/desk.py). They are two models because a TOML section such as `[email]` would
otherwise be read from an `EMAIL` environment variable, which many machines set.
"""

from __future__ import annotations

import re
import sqlite3
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# RETURNING (numbering action items, planning delivery rows) came with SQLite 3.35 (2021); the
# sqlite3 module uses the system's library, which an older OS may hold back.
SQLITE_NEEDED = (3, 35, 0)
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


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
    # The proxies or load balancers in front of the service (addresses or CIDRs, separated by
    # commas): only a request from one of them has its X-Forwarded-For believed, to find the
    # client that the public pages' limits count (bot/web/limits.py). Empty: none.
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        (), validation_alias="ALERTBOT_TRUSTED_PROXIES")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = []
        for given in value.replace(",", " ").split():
            try:
                found.append(ip_network(given, strict=False))
            except ValueError:
                raise ValueError(f"{given!r} is not an IP address or a CIDR such as "
                                 "10.0.0.0/8") from None
        return tuple(found)

    @field_validator(
        "slack_bot_token", "slack_signing_secret", "slack_app_token", "smtp_password",
        "ingest_token", "secret_key", "smtp_host", "smtp_username", mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `SLACK_BOT_TOKEN=` in a .env file means "not configured", not "an empty token".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _usable_database(cls, value: SecretStr) -> SecretStr:
        # Said here, by name, rather than as a failed statement later. The URL is a secret
        # (it may hold a password): only its scheme is named.
        given = value.get_secret_value()
        if not given.strip():
            raise ValueError("empty: leave it out for SQLite at var/alertbot.db, or give "
                             "sqlite:///… or postgresql://…")
        url = _URL_SCHEME.match(given)
        if url is None:  # e.g. "host=db password=…": quoting it would show the password
            raise ValueError("not a database URL (sqlite:///… or postgresql://…)")
        scheme = url[1].partition("+")[0]  # as SQLAlchemy reads it: case and all
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported database {scheme!r} (use sqlite or postgresql)")
        if scheme == "sqlite" and sqlite3.sqlite_version_info < SQLITE_NEEDED:
            raise ValueError(
                f"this Python's SQLite is {sqlite3.sqlite_version}; alertbot needs "
                f"{'.'.join(map(str, SQLITE_NEEDED))} or later (or use PostgreSQL)")
        return value

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
