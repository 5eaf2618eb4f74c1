"""`/alerts subscribe [topic …] [impact>=N] | unsubscribe | status`, and `/alerts me …` for DMs.

Parsing is a pure function; the reply says what changed, or exactly which word was not
understood. Config-file routes are shown read-only; an admin allowlist guards channel changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from sqlalchemy import Connection

from bot import outbox, slack_routes
from bot.db import Database
from bot.render import slack_blocks
from bot.settings import DeskConfig, RouteConfig
from bot.slack_routes import SlackRoute

VERBS = ("subscribe", "unsubscribe", "status")
_IMPACT = re.compile(r"^impact>=(\d+(?:\.\d+)?)$")
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_QUIET = re.compile(r"^(quiet|\d{1,2}:\d{2}-\d{1,2}:\d{2})$")


@dataclass(frozen=True)
class Request:
    verb: str
    direct: bool  # `/alerts me …`
    topics: tuple[str, ...] = ()
    min_impact: float | None = None


def parse(text: str) -> Request | str:
    """Read `/alerts` arguments; return the request, or a sentence naming what is wrong."""
    words = text.lower().split()
    direct = bool(words) and words[0] == "me"
    words = words[1:] if direct else words
    if not words or words[0] not in VERBS:
        return f"`{words[0]}` is not a command" if words and words[0] != "help" else ""
    verb, rest = words[0], words[1:]
    if verb != "subscribe" and rest:
        return f"`{verb}` takes no arguments"
    topics: list[str] = []
    min_impact: float | None = None
    for word in rest:
        if impact := _IMPACT.match(word):
            min_impact = float(impact[1])
            if not 1 <= min_impact <= 10:
                return f"`{word}`: impact is a number from 1 to 10"
        elif _QUIET.match(word):
            return "quiet hours are not available yet: subscribe without `quiet`"
        elif _TOPIC.match(word):
            topics.append(word)
        else:
            return f"`{word}` is not a topic, `impact>=N` or `quiet HH:MM-HH:MM`"
    return Request(verb, direct, tuple(sorted(set(topics))), min_impact)


def _config_route(desk: DeskConfig, address: str) -> RouteConfig | None:
    return next((r for r in desk.slack.routes if r.channel == address), None)


def answer(db: Connection, text: str, channel: str, user: str, now: datetime,
           desk: DeskConfig, command: str) -> dict[str, Any]:
    """Carry out `/alerts text` typed by `user` in `channel` at `now`; return the reply."""
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
        route = SlackRoute(address, request.topics, request.min_impact, user, now)
        slack_routes.save(db, route)
        reply["route"] = _describe(route.topics, route.min_impact, desk)
    elif request.verb == "unsubscribe":
        reply["removed"] = slack_routes.remove(db, address)
    else:
        made = slack_routes.listing(db, address)
        route_made = made[0] if made else None
        if config_route is not None:
            reply["route"] = _describe(config_route.topics, config_route.min_impact, desk)
            reply["read_only"] = True
        elif route_made is not None:
            reply["route"] = _describe(route_made.topics, route_made.min_impact, desk)
            reply["by"] = route_made.created_by
        reply["recent"] = [
            {"kind": d.kind, "status": d.status,
             "at": f"{(d.sent_at or d.created_at):%Y-%m-%d %H:%M} UTC"}
            for d in outbox.recent(db, f"slack:{address}")
        ]
    return slack_blocks("alerts", **reply)


def _describe(topics: tuple[str, ...], min_impact: float | None, desk: DeskConfig) -> str:
    impact = max(desk.rules.min_impact, min_impact or 0)
    subjects = f"topics {', '.join(topics)}" if topics else "all topics"
    return f"{subjects}, impact ≥ {impact:g}, ≥ {desk.rules.min_sources} sources"


def register(app: AsyncApp, db: Database, desk: DeskConfig) -> None:
    command_name = desk.slack.commands.alerts

    @app.command(command_name)
    async def alerts_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        reply = await db.write(answer, command.get("text", ""), command.get("channel_id", ""),
                               command.get("user_id", ""), datetime.now(UTC), desk,
                               command_name)
        await ack(response_type="ephemeral", **reply)
