"""`/alerts subscribe [topic …] [impact>=N] [quiet HH:MM-HH:MM [zone]] | unsubscribe | status`,
and `/alerts me …` for DMs.

Parsing is a pure function; the reply says what changed, or exactly which word was not
understood (templates/slack/alerts.json.j2 words it). Config-file routes are shown read-only;
an admin allowlist guards channel changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection

from bot import outbox
from bot.db import Database
from bot.messages.render import slack_blocks
from bot.readers import slack_routes
from bot.rules.targets import SlackRoute
from bot.settings import DeskConfig, RouteConfig
from bot.slack_app.replies import Clock, ack_at_once, reply_later

VERBS = ("subscribe", "unsubscribe", "status")
_IMPACT = re.compile(r"^impact>=(\d+(?:\.\d+)?)$")
TOPIC = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
QUIET_RANGE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Request:
    verb: str
    direct: bool  # `/alerts me …`
    topics: tuple[str, ...] = ()
    min_impact: float | None = None
    quiet_hours: str | None = None
    zone: str | None = None  # None: the person's own Slack time zone


@dataclass(frozen=True)
class Problem:
    """What was not understood, for the template to word: `kind` names it, `word` quotes it.

    Kinds: usage (nothing, or `help`), not_a_command, no_arguments, impact_range,
    quiet_range, not_a_zone, not_understood.
    """

    kind: str
    word: str = ""


def is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse(text: str) -> Request | Problem:
    """Read `/alerts` arguments; return the request, or the problem with them."""
    words = text.split()  # original case: time zone names are case-sensitive
    direct = bool(words) and words[0].lower() == "me"
    words = words[1:] if direct else words
    verb = words[0].lower() if words else ""
    if verb not in VERBS:
        return Problem("not_a_command", words[0]) if words and verb != "help" else Problem("usage")
    if verb != "subscribe" and words[1:]:
        return Problem("no_arguments", verb)
    topics: list[str] = []
    min_impact: float | None = None
    quiet: str | None = None
    zone: str | None = None
    tokens = iter(words[1:])
    for word in tokens:
        if impact := _IMPACT.match(word.lower()):
            min_impact = float(impact[1])
            if not 1 <= min_impact <= 10:
                return Problem("impact_range", word)
        elif word.lower() == "quiet":
            quiet = next(tokens, "")
            if not QUIET_RANGE.match(quiet):
                return Problem("quiet_range", quiet)
        elif quiet and zone is None and ("/" in word or word.upper() == "UTC"):
            if not is_zone(word):
                return Problem("not_a_zone", word)
            zone = "UTC" if word.upper() == "UTC" else word
        elif TOPIC.match(word.lower()):
            topics.append(word.lower())
        else:
            return Problem("not_understood", word)
    return Request(verb, direct, tuple(sorted(set(topics))), min_impact, quiet, zone)


def answer(db: Connection, text: str, channel: str, user: str, now: datetime,
           desk: DeskConfig, command: str, user_zone: str | None = None) -> dict[str, Any]:
    """Carry out `/alerts text` typed by `user` in `channel` at `now`; return the reply.

    `user_zone` is the person's Slack time zone, used for quiet hours given without a zone.
    """
    request = parse(text)
    if isinstance(request, Problem):
        return _reply("usage", command, problem=request.kind, word=request.word)
    address = user if request.direct else channel
    place = {"direct": request.direct, "channel": channel}
    config_route = None if request.direct else _config_route(desk, channel)
    if request.verb == "status":
        return _reply("status", command, **place, **_status(db, address, desk, config_route))
    if not request.direct and desk.slack.admins and user not in desk.slack.admins:
        return _reply("refused", command, **place)
    if config_route is not None:
        return _reply("config_owned", command, **place)
    if request.verb == "unsubscribe":
        return _reply("unsubscribe", command, **place, removed=slack_routes.remove(db, address))
    zone = request.zone or user_zone or "UTC"
    route = SlackRoute(address, request.topics, request.min_impact, user, now,
                       request.quiet_hours, zone)
    slack_routes.save(db, route)
    return _reply("subscribe", command, **place,
                  route=route_view(desk, route.topics, route.min_impact, route.quiet_hours, zone))


def _config_route(desk: DeskConfig, address: str) -> RouteConfig | None:
    return next((r for r in desk.slack.routes if r.channel == address), None)


def _status(db: Connection, address: str, desk: DeskConfig, config_route: RouteConfig | None
            ) -> dict[str, Any]:
    """The route of `address` (config file first, else made in Slack) and its last deliveries."""
    recent = [{"kind": d.kind, "status": d.status, "at": d.sent_at or d.created_at}
              for d in outbox.recent(db, f"slack:{address}")]
    if config_route is not None:
        return {"recent": recent, "read_only": True,
                "route": route_view(desk, config_route.topics, config_route.min_impact,
                                config_route.quiet_hours, config_route.timezone)}
    made = slack_routes.listing(db, address)
    if not made:
        return {"recent": recent}
    return {"recent": recent, "by": made[0].created_by,
            "route": route_view(desk, made[0].topics, made[0].min_impact, made[0].quiet_hours,
                            made[0].timezone)}


def route_view(desk: DeskConfig, topics: tuple[str, ...], min_impact: float | None,
           quiet_hours: str | None, zone: str) -> dict[str, Any]:
    """A route's effective filters, as values: the template describes them."""
    impact = desk.rules.min_impact if min_impact is None else max(desk.rules.min_impact,
                                                                  min_impact)
    return {"topics": list(topics), "impact": impact, "sources": desk.rules.min_sources,
            "quiet_hours": quiet_hours, "zone": zone}


def _reply(outcome: str, command: str, **context: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"problem": None, "word": "", "direct": False, "channel": "",
                              "route": None, "read_only": False, "by": None, "recent": [],
                              "removed": False}
    return slack_blocks("alerts", outcome=outcome, command=command, **(values | context))


def register(app: AsyncApp, db: Database, desk: DeskConfig, clock: Clock) -> None:
    name = desk.slack.commands.alerts

    async def alerts_command(respond: AsyncRespond, command: dict[str, Any],
                             client: AsyncWebClient) -> None:
        now = clock()
        await reply_later(respond, _carry_out(db, desk, client, command, now))

    app.command(name)(ack=ack_at_once, lazy=[alerts_command])


async def _carry_out(db: Database, desk: DeskConfig, client: AsyncWebClient,
                     command: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Look up the person's time zone if quiet hours need it, then answer (one transaction)."""
    text, user = command.get("text", ""), command.get("user_id", "")
    request = parse(text)
    zone = None
    if isinstance(request, Request) and request.quiet_hours and request.zone is None:
        zone = await _user_zone(client, user)
    return await db.write(answer, text, command.get("channel_id", ""), user, now, desk,
                          desk.slack.commands.alerts, zone)


async def _user_zone(client: AsyncWebClient, user: str) -> str | None:
    """The person's time zone from their Slack profile (users.info), or None."""
    try:
        profile = await client.users_info(user=user)
    except (SlackApiError, aiohttp.ClientError, TimeoutError):
        return None  # the route still works, in UTC, and the reply says so
    zone = (profile.get("user") or {}).get("tz")
    return zone if isinstance(zone, str) and is_zone(zone) else None
