"""`/alerts subscribe [topic …] [impact>=N] [quiet HH:MM-HH:MM [zone]] | unsubscribe | status`,
and `/alerts me …` for DMs.

Parsing is a pure function; the reply says what changed, or exactly which word was not
understood. Config-file routes are shown read-only; an admin allowlist guards channel changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection

from bot import outbox
from bot.db import Database
from bot.messages.render import slack_blocks
from bot.readers import slack_routes
from bot.rules.targets import SlackRoute
from bot.settings import DeskConfig, RouteConfig

VERBS = ("subscribe", "unsubscribe", "status")
_IMPACT = re.compile(r"^impact>=(\d+(?:\.\d+)?)$")
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_RANGE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Request:
    verb: str
    direct: bool  # `/alerts me …`
    topics: tuple[str, ...] = ()
    min_impact: float | None = None
    quiet_hours: str | None = None
    zone: str | None = None  # None: the person's own Slack time zone


def _zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse(text: str) -> Request | str:
    """Read `/alerts` arguments; return the request, or a sentence naming what is wrong."""
    words = text.split()  # original case: time zone names are case-sensitive
    direct = bool(words) and words[0].lower() == "me"
    words = words[1:] if direct else words
    verb = words[0].lower() if words else ""
    if verb not in VERBS:
        return f"`{words[0]}` is not a command" if words and verb != "help" else ""
    rest = words[1:]
    if verb != "subscribe" and rest:
        return f"`{verb}` takes no arguments"
    topics: list[str] = []
    min_impact: float | None = None
    quiet: str | None = None
    zone: str | None = None
    tokens = iter(rest)
    for word in tokens:
        if impact := _IMPACT.match(word.lower()):
            min_impact = float(impact[1])
            if not 1 <= min_impact <= 10:
                return f"`{word}`: impact is a number from 1 to 10"
        elif word.lower() == "quiet":
            quiet = next(tokens, "")
            if not _RANGE.match(quiet):
                return f"`quiet {quiet}`: give a range such as `quiet 22:00-07:00`"
        elif quiet and zone is None and ("/" in word or word.upper() == "UTC"):
            if not _zone(word):
                return f"`{word}` is not a time zone (use a name such as Europe/London)"
            zone = "UTC" if word.upper() == "UTC" else word
        elif _TOPIC.match(word.lower()):
            topics.append(word.lower())
        else:
            return f"`{word}` is not a topic, `impact>=N` or `quiet HH:MM-HH:MM [zone]`"
    return Request(verb, direct, tuple(sorted(set(topics))), min_impact, quiet, zone)


def _config_route(desk: DeskConfig, address: str) -> RouteConfig | None:
    return next((r for r in desk.slack.routes if r.channel == address), None)


def answer(db: Connection, text: str, channel: str, user: str, now: datetime,
           desk: DeskConfig, command: str, user_zone: str | None = None) -> dict[str, Any]:
    """Carry out `/alerts text` typed by `user` in `channel` at `now`; return the reply.

    `user_zone` is the person's Slack time zone, used for quiet hours given without a zone.
    """
    request = parse(text)
    if isinstance(request, str):
        return slack_blocks("alerts", outcome="usage", problem=request, command=command)
    address = user if request.direct else channel
    where = "your DMs" if request.direct else f"<#{channel}>"
    reply: dict[str, Any] = {"outcome": request.verb, "where": where, "command": command,
                             "route": None, "read_only": False, "by": None, "recent": [],
                             "removed": False}
    config_route = None if request.direct else _config_route(desk, channel)
    changing = request.verb != "status"
    if changing and not request.direct and desk.slack.admins and user not in desk.slack.admins:
        return slack_blocks("alerts", outcome="refused", where=where, command=command)
    if changing and config_route is not None:
        return slack_blocks("alerts", outcome="config_owned", where=where, command=command)
    if request.verb == "subscribe":
        zone = request.zone or user_zone or "UTC"
        route = SlackRoute(address, request.topics, request.min_impact, user, now,
                           request.quiet_hours, zone)
        slack_routes.save(db, route)
        reply["route"] = _describe(route.topics, route.min_impact, desk, route.quiet_hours, zone)
    elif request.verb == "unsubscribe":
        reply["removed"] = slack_routes.remove(db, address)
    else:
        made = slack_routes.listing(db, address)
        route_made = made[0] if made else None
        if config_route is not None:
            reply["route"] = _describe(config_route.topics, config_route.min_impact, desk,
                                       config_route.quiet_hours, config_route.timezone)
            reply["read_only"] = True
        elif route_made is not None:
            reply["route"] = _describe(route_made.topics, route_made.min_impact, desk,
                                       route_made.quiet_hours, route_made.timezone)
            reply["by"] = route_made.created_by
        reply["recent"] = [
            {"kind": d.kind, "status": d.status,
             "at": f"{(d.sent_at or d.created_at):%Y-%m-%d %H:%M} UTC"}
            for d in outbox.recent(db, f"slack:{address}")
        ]
    return slack_blocks("alerts", **reply)


def _describe(topics: tuple[str, ...], min_impact: float | None, desk: DeskConfig,
              quiet_hours: str | None, zone: str) -> str:
    impact = max(desk.rules.min_impact, min_impact or 0)
    subjects = f"topics {', '.join(topics)}" if topics else "all topics"
    described = f"{subjects}, impact ≥ {impact:g}, ≥ {desk.rules.min_sources} sources"
    return described + (f", quiet {quiet_hours} {zone}" if quiet_hours else "")


def register(app: AsyncApp, db: Database, desk: DeskConfig) -> None:
    command_name = desk.slack.commands.alerts

    @app.command(command_name)
    async def alerts_command(ack: AsyncAck, command: dict[str, Any],
                             client: AsyncWebClient) -> None:
        text, user = command.get("text", ""), command.get("user_id", "")
        request = parse(text)
        zone = None
        if isinstance(request, Request) and request.quiet_hours and request.zone is None:
            zone = await _user_zone(client, user)
        reply = await db.write(answer, text, command.get("channel_id", ""), user,
                               datetime.now(UTC), desk, command_name, zone)
        await ack(response_type="ephemeral", **reply)


async def _user_zone(client: AsyncWebClient, user: str) -> str | None:
    """The person's time zone from their Slack profile (users.info), or None."""
    try:
        profile = await client.users_info(user=user)
    except (SlackApiError, aiohttp.ClientError, TimeoutError):
        return None  # the route still works, in UTC, and the reply says so
    zone = (profile.get("user") or {}).get("tz")
    return zone if isinstance(zone, str) and _zone(zone) else None
