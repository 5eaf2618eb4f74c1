"""The desk's TOML file as models: rules, sources, delivery, Slack routes and email defaults.

A per-route setting is `X | None = None`: None means "absent, take the desk's".
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.settings.values import Command, Duration, Impact, PositiveDuration, TimeZoneName
from bot.stories.model import Sentiment

_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
# Whom an escalation names: a user (U…, W…), a user group (S…) or a channel (C…, G…).
_ESCALATE_ID = re.compile(r"^[UWSCG][A-Z0-9]{2,}$")
# A host name as Slack's app settings take an unfurl domain: labels of letters, digits and
# hyphens, dot-separated, ending in a letter label (no scheme, port, path or wildcard).
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


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
    workers: int = Field(default=32, ge=1, le=64)
    processes: int = Field(default=1, ge=1, le=16)


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
    # Escalation of an action item nobody has claimed (docs/slack-app.md, "Escalation"):
    # absent `escalate_after`, none. "0s" escalates with the alert itself.
    escalate_after: Duration | None = None
    escalate_impact: Impact = 9
    escalate_to: tuple[str, ...] = ()
    escalate_repeat: int = Field(default=1, ge=1)

    @field_validator("escalate_to")
    @classmethod
    def _escalate_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for given in value:
            if not _ESCALATE_ID.match(given):
                raise ValueError(f"{given!r} is not a Slack user (U…, W…), user-group (S…) "
                                 "or channel (C…, G…) ID")
        return value

    @model_validator(mode="after")
    def _escalates_to_someone(self) -> RouteConfig:
        if self.escalate_after is not None and not self.escalate_to:
            raise ValueError("escalate_after is set but escalate_to names nobody to escalate to")
        if self.escalate_after is not None and not self.escalate_after and self.escalate_repeat > 1:
            raise ValueError("escalate_after = \"0s\" with escalate_repeat > 1 would send every "
                             "round at once: give the rounds a gap, or one round")
        return self

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


class CommandNames(_Section):
    """Slash command names, as registered in the Slack app (configurable)."""

    story: Command = "/story"
    actionitems: Command = "/actionitems"
    alerts: Command = "/alerts"


class SlackConfig(_Section):
    commands: CommandNames = CommandNames()
    admins: tuple[str, ...] = ()  # user IDs allowed to change channel routes; empty = anyone
    # Who may claim, finish, snooze, dismiss or re-open action items: user (U…/W…) or user-group
    # (S…) IDs. Absent (None): anyone who sees the message; [] means what it says: nobody.
    actions_allowed: tuple[str, ...] | None = None
    pacing: Duration = timedelta(seconds=1)
    batch_window: Duration = timedelta(seconds=30)
    timeout: PositiveDuration = timedelta(seconds=10)  # the longest one Web API call may take
    routes: tuple[RouteConfig, ...] = ()
    # Story links in these domains (and their subdomains) unfurl into the story's figures; the
    # same domains go in the Slack app's manifest. Empty: off.
    unfurl_domains: tuple[str, ...] = ()

    @field_validator("actions_allowed")
    @classmethod
    def _slack_ids(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for given in value or ():
            if not _SLACK_ID.match(given):
                raise ValueError(f"{given!r} is not a Slack user (U…, W…) or user-group (S…) ID")
        return value

    @field_validator("unfurl_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        found = tuple(given.strip().lower() for given in value)
        for given, domain in zip(value, found, strict=True):
            if not _DOMAIN.match(domain):
                raise ValueError(f"{given!r} is not a domain name: write the host alone, "
                                 "without scheme, port or path, e.g. \"news.example.com\"")
        return found


class EmailConfig(_Section):
    batch_window: Duration = timedelta(seconds=30)
    digest_hour: str = "07:00"
    send_empty_digest: bool = False
    connections: int = Field(default=1, ge=1, le=16)  # SMTP sessions open at once
    # Self sign-up (GET /signup) for addresses in these mail domains; empty: no sign-up page.
    signup_domains: tuple[str, ...] = ()
    # Sign-up requests one client address may make in an hour (an office behind one NAT
    # address signing up together may need more); each address gets at most one email in 10 min.
    signup_per_client: int = Field(default=10, ge=1)

    @field_validator("signup_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        domains = tuple(d.strip().lower().removeprefix("@") for d in value)
        for domain in domains:
            if not _DOMAIN.match(domain):
                raise ValueError(f"{domain!r} is not a mail domain such as \"desk.example\"")
        return domains

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
