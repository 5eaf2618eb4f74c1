"""The App Home "My alerts" tab: what one person receives and holds, published for them.

Opening the tab sends `app_home_opened`; the ack half acks at once and the lazy half asks
Slack for the person's profile (`users.info`: time zone, and email with `users:read.email`),
reads their DM route, their email subscription (when the profile's address is a subscriber),
the items they claimed and today's open action items in one read, and publishes the view
(`views.publish`). The edits' modals (home_edits.py) publish it again after each save.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection

from bot.db import Database
from bot.messages.render import slack_view
from bot.readers import slack_routes, subscribers
from bot.rules.claims import State
from bot.rules.digest_clock import digest_time, local_date
from bot.settings import DeskConfig
from bot.slack_app.alerts import is_zone, route_view
from bot.slack_app.replies import Clock, ack_at_once
from bot.stories import actions

log = logging.getLogger(__name__)

# Items listed per section; a Home view holds 100 blocks, and the tab is a glance, not a list.
LISTED = 10


@dataclass(frozen=True)
class Profile:
    """What the person's Slack profile says; None where Slack did not say (or could not)."""

    zone: str | None
    email: str | None


async def profile(client: AsyncWebClient, user: str) -> Profile:
    """The person's time zone and email address from `users.info`."""
    try:
        answer = await client.users_info(user=user)
    except (SlackApiError, aiohttp.ClientError, TimeoutError):
        return Profile(None, None)  # the tab still shows, in UTC and without email
    person = answer.get("user") or {}
    zone = person.get("tz")
    email = (person.get("profile") or {}).get("email")
    return Profile(zone if isinstance(zone, str) and is_zone(zone) else None,
                   email.strip().lower() if isinstance(email, str) and email.strip() else None)


def view(db: Connection, user: str, who: Profile, now: datetime, desk: DeskConfig
         ) -> dict[str, Any]:
    """The person's Home view at `now`, as values the template words (one read)."""
    zone = who.zone or "UTC"
    made = slack_routes.listing(db, user)
    route = None
    if made:
        r = made[0]
        route = route_view(desk, r.topics, r.min_impact, r.quiet_hours, r.timezone)
    reader = subscribers.find(db, who.email) if who.email else None
    midnight = digest_time(local_date(now, zone), zone, "00:00")
    claimed = actions.items(db, State.CLAIMED, LISTED + 1, by=user)
    today = actions.items(db, State.OPEN, LISTED + 1, since=midnight)
    return slack_view("home", user=user, zone=zone, profile_zone=who.zone, email=who.email,
                      route=route, reader=reader, paused=bool(reader and reader.paused(now)),
                      claimed=claimed[:LISTED], more_claimed=len(claimed) > LISTED,
                      today=today[:LISTED], more_today=len(today) > LISTED,
                      story_command=desk.slack.commands.story)


async def publish(client: AsyncWebClient, db: Database, desk: DeskConfig, user: str,
                  now: datetime) -> None:
    """Publish the person's Home tab as it stands at `now`."""
    who = await profile(client, user)
    home = await db.read(view, user, who, now, desk)
    await client.views_publish(user_id=user, view=home)


def register(app: AsyncApp, db: Database, desk: DeskConfig, clock: Clock) -> None:
    async def opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab") != "home":  # the Messages tab opens the DM; nothing to publish
            return
        now = clock()
        await publish(client, db, desk, str(event.get("user", "")), now)

    app.event("app_home_opened")(ack=ack_at_once, lazy=[opened])
