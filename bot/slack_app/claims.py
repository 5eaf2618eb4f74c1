"""Action-item buttons: Claim, Done, Snooze and Re-open on an alert or a batch's item.

Each acks at once and hands its work to `replies.later`, which reads the clock once, stores the
press once (`bot.stories.actions.apply`, keyed by Slack's `action_ts`, so a retried or doubled
press changes nothing), and answers the presser only when the press was refused ("already
claimed by …").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection

from bot import outbox
from bot.db import Database
from bot.messages.render import slack_blocks
from bot.rules.claims import Item, Request, Verb, snooze_until
from bot.settings import DeskConfig
from bot.slack_app.replies import Clock, ack_at_once, later, reply_later
from bot.stories import actions

log = logging.getLogger(__name__)

# action_id → what the press does; the button's value is the story id.
BUTTONS = {"item_claim": Verb.CLAIM, "item_done": Verb.DONE, "item_reopen": Verb.REOPEN}


def register(app: AsyncApp, db: Database, desk: DeskConfig, clock: Clock,
             wake: Callable[[], None]) -> None:
    allowed = desk.slack.actions_allowed

    async def pressed(respond: AsyncRespond, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        now = clock()
        verb, story_id, until = await _what(client, body, action, now)
        user = body.get("user", {}).get("id", "?")
        groups = await groups_of(client, allowed, user)
        request = Request(verb, user, groups, until=until)
        key = actions.press_key(str(action.get("action_ts", "")), user, verb.value, story_id)
        await reply_later(respond, _store(db, wake, story_id, request, now, key, allowed),
                          replace_original=False)

    async def press(ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any],
                    action: dict[str, Any], client: AsyncWebClient) -> None:
        # Pressed in bursts (a desk claiming a morning's items): no lazy listener, whose
        # per-request copies cost more than the press (replies.later).
        await ack_at_once(ack)
        later(pressed(respond, body, action, client))

    for action_id in (*BUTTONS, "item_snooze"):
        app.action(action_id)(press)


async def _what(client: AsyncWebClient, body: dict[str, Any], action: dict[str, Any],
                now: datetime) -> tuple[Verb, str, datetime | None]:
    """The verb, the story and (for a snooze) its end, from a button or the snooze select."""
    if action["action_id"] in BUTTONS:
        return BUTTONS[action["action_id"]], action["value"], None
    # The select's option value is "<choice>:<story id>" (a story id may hold colons).
    choice, story_id = action["selected_option"]["value"].split(":", 1)
    zone = await _zone(client, body.get("user", {}).get("id", "?"))
    return Verb.SNOOZE, story_id, snooze_until(choice, now, zone)


def record(db: Connection, story_id: str, request: Request, now: datetime, key: str,
           allowed: Collection[str] | None) -> actions.Applied:
    """Apply the press and, if it changed the state, queue the edit of each posted message of
    the story, in one transaction: a stored change is always shown, a repeat never twice."""
    applied = actions.apply(db, story_id, request, now, key, allowed)
    if applied.outcome.applied:
        item, version = actions.read(db, story_id)
        outbox.enqueue_owner(db, story_id, version, owner_details(item), now)
    return applied


def owner_details(item: Item) -> dict[str, Any]:
    """The state as an `owner` row keeps it (JSON): what the edit and its thread line show."""
    return {"state": item.state.value, "by": item.by,
            "at": item.at.isoformat() if item.at else None, "note": item.note,
            "reason": item.reason.value if item.reason else None,
            "snoozed_until": item.snoozed_until.isoformat() if item.snoozed_until else None}


async def _store(db: Database, wake: Callable[[], None], story_id: str, request: Request,
                 now: datetime, key: str, allowed: Collection[str] | None
                 ) -> dict[str, Any] | None:
    """Apply the press; say why to the presser only if it was refused (not on a repeat)."""
    applied = await db.write(record, story_id, request, now, key, allowed)
    if applied.outcome.applied:
        wake()  # the delivery workers edit the messages, paced and retried
    if applied.repeat or applied.outcome.applied:
        return None
    outcome = applied.outcome
    return slack_blocks("item_refused", code=outcome.code, holder=outcome.holder,
                        state=outcome.item)


async def _zone(client: AsyncWebClient, user: str) -> str:
    """The person's Slack time zone for "tomorrow 08:00"; UTC when Slack cannot say."""
    try:
        profile = await client.users_info(user=user)
    except (SlackApiError, aiohttp.ClientError, TimeoutError):
        return "UTC"
    zone = (profile.get("user") or {}).get("tz")
    try:
        return str(ZoneInfo(zone).key) if isinstance(zone, str) else "UTC"
    except (ValueError, ZoneInfoNotFoundError):
        return "UTC"


async def groups_of(client: AsyncWebClient, allowed: Collection[str] | None,
                  user: str) -> frozenset[str]:
    """The listed user groups this person is in (asked only when a group is listed)."""
    if allowed is None or user in allowed:
        return frozenset()
    found: set[str] = set()
    for group in (listed for listed in allowed if listed.startswith("S")):
        try:
            members = await client.usergroups_users_list(usergroup=group)
        except (SlackApiError, aiohttp.ClientError, TimeoutError):
            log.warning("could not read the members of user group %s", group)
            continue
        if user in (members.get("users") or []):
            found.add(group)
    return frozenset(found)
