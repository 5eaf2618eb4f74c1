"""Action-item presses: Claim, Snooze and Re-open on an alert, and what Done's and Not
relevant's forms (done.py, dismiss.py) and a batch item's menu (menu.py) share with them.

Each acks at once and hands its work to `replies.later`, which reads the clock once, stores the
press once (`bot.stories.actions.apply`, keyed by Slack's `action_ts`, so a retried or doubled
press changes nothing), and answers the presser only when the press was refused ("already
claimed by …").
A control's story is in its block's id (`item:<id>`): a select option's value holds only 150
characters. The presser's name, as Slack sends it, is stored for email.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
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

# action_id → what the press does; the button's value is the story id. (Done opens a modal
# for its note: done.py.)
BUTTONS = {"item_claim": Verb.CLAIM, "item_reopen": Verb.REOPEN}
# A control's block carries its story: "item:<story id>" (a block_id holds 255 characters, a
# select option's value only 150, and a story id may have 200).
BLOCK_PREFIX = "item:"
NAME_LIMIT = 80  # action_items.by_name


@dataclass(frozen=True)
class Presses:
    """What storing a press needs, for the buttons and a batch item's menu (menu.py)."""

    db: Database
    wake: Callable[[], None]
    clock: Clock
    allowed: Collection[str] | None
    # Told the seconds from the story's first Slack message to its claim (a metric).
    claimed: Callable[[float], None] | None = None

    @classmethod
    def of(cls, db: Database, desk: DeskConfig, clock: Clock, wake: Callable[[], None],
           claimed: Callable[[float], None] | None = None) -> Presses:
        return cls(db, wake, clock, desk.slack.actions_allowed, claimed)


def register(app: AsyncApp, presses: Presses) -> None:
    async def pressed(ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any],
                      action: dict[str, Any], client: AsyncWebClient) -> None:
        # Pressed in bursts (a desk claiming a morning's items): no lazy listener, whose
        # per-request copies cost more than the press (replies.later).
        await ack_at_once(ack)
        later(press(presses, respond, body, action, client))

    for action_id in (*BUTTONS, "item_snooze"):
        app.action(action_id)(pressed)


async def press(presses: Presses, respond: AsyncRespond, body: dict[str, Any],
                action: dict[str, Any], client: AsyncWebClient, choice: str | None = None
                ) -> None:
    """Store one press of a button, the snooze select or (`choice`) a batch item's menu; a
    press that fails (a forged choice) is answered too, like any command (replies.py)."""
    await reply_later(respond, _press(presses, body, action, client, choice),
                      replace_original=False)


async def _press(presses: Presses, body: dict[str, Any], action: dict[str, Any],
                 client: AsyncWebClient, choice: str | None) -> dict[str, Any] | None:
    now = presses.clock()
    verb, story_id, until = await _what(client, body, action, now, choice)
    user = body.get("user", {}).get("id", "?")
    groups = await groups_of(client, presses.allowed, user)
    request = Request(verb, user, groups, until=until, name=presser_name(body))
    key = actions.press_key(str(action.get("action_ts", "")), user, verb.value, story_id)
    return await _store(presses, story_id, request, now, key)


def story_of(action: dict[str, Any]) -> str:
    """The story a control acts on: its block's "item:<id>", else (a button, or a select in a
    message posted before block ids carried it) its value, "<choice>:<id>" for a select."""
    block = str(action.get("block_id", ""))
    if block.startswith(BLOCK_PREFIX):
        return block.removeprefix(BLOCK_PREFIX)
    if "selected_option" in action:
        return str(action["selected_option"]["value"]).partition(":")[2]
    return str(action["value"])


def presser_name(body: dict[str, Any]) -> str | None:
    """The presser's name as Slack sends it with every interaction, kept for the media that
    cannot show `<@U…>` (email, the terminal)."""
    user = body.get("user") or {}
    name = user.get("name") or user.get("username")
    return str(name)[:NAME_LIMIT] if name else None


async def _what(client: AsyncWebClient, body: dict[str, Any], action: dict[str, Any],
                now: datetime, choice: str | None) -> tuple[Verb, str, datetime | None]:
    """The verb, the story and (for a snooze) its end, from a button, the snooze select or a
    menu `choice` ("claim", "snooze:1h", …)."""
    story_id = story_of(action)
    if choice is None and action["action_id"] in BUTTONS:
        return BUTTONS[action["action_id"]], story_id, None
    if choice is None:
        # The snooze select's value is the choice ("1h"); before block ids carried the story
        # it was "<choice>:<story id>".
        choice = "snooze:" + str(action["selected_option"]["value"]).partition(":")[0]
    if choice == "claim":
        return Verb.CLAIM, story_id, None
    if choice == "reopen":
        return Verb.REOPEN, story_id, None
    zone = await _zone(client, body.get("user", {}).get("id", "?"))
    return Verb.SNOOZE, story_id, snooze_until(choice.removeprefix("snooze:"), now, zone)


def record(db: Connection, story_id: str, request: Request, now: datetime, key: str,
           allowed: Collection[str] | None) -> actions.Applied:
    """Apply the press and, if it changed the state, queue the edit of each posted message of
    the story, in one transaction: a stored change is always shown, a repeat never twice."""
    applied = actions.apply(db, story_id, request, now, key, allowed)
    if applied.outcome.applied:
        item, version = actions.read(db, story_id)
        outbox.enqueue_owner(db, story_id, version, owner_details(item), now)
        outbox.follow_escalations(db, story_id, item, now)  # cancelled, or moved by a snooze
    return applied


def owner_details(item: Item) -> dict[str, Any]:
    """The state as an `owner` row keeps it (JSON): what the edit and its thread line show."""
    return {"state": item.state.value, "by": item.by,
            "at": item.at.isoformat() if item.at else None, "note": item.note,
            "reason": item.reason.value if item.reason else None,
            "snoozed_until": item.snoozed_until.isoformat() if item.snoozed_until else None,
            "by_name": item.by_name}


async def _store(presses: Presses, story_id: str, request: Request, now: datetime, key: str
                 ) -> dict[str, Any] | None:
    """Apply the press; say why to the presser only if it was refused (not on a repeat)."""
    db = presses.db
    applied = await db.write(record, story_id, request, now, key, presses.allowed)
    if applied.outcome.applied:
        presses.wake()  # the delivery workers edit the messages, paced and retried
        if request.verb is Verb.CLAIM and presses.claimed is not None:
            first = await db.read(outbox.first_posted, story_id)
            if first is not None:  # claimed from a message: it was posted
                presses.claimed(max(0.0, (now - first).total_seconds()))
    return refusal(applied)


def refusal(applied: actions.Applied) -> dict[str, Any] | None:
    """What the presser is told: nothing when the press applied or repeated, else why not."""
    if applied.repeat or applied.outcome.applied:
        return None
    outcome = applied.outcome
    return slack_blocks("item_refused", code=outcome.code, holder=outcome.holder,
                        state=outcome.item)


def form_metadata(story_id: str, body: dict[str, Any]) -> str:
    """A form's (modal's) private_metadata: the story, and on a second line the press's
    response_url (a story id holds no line break). A view_submission carries no response_url
    of its own, and a refused one ("Already done by …") must still be told to the presser."""
    reply = body.get("response_url")
    return f"{story_id}\n{reply}" if isinstance(reply, str) and reply else story_id


def form_story(view: dict[str, Any]) -> tuple[str, AsyncRespond | None]:
    """The story a submitted form is about, and where to answer its presser (if known)."""
    story_id, _, reply = str(view.get("private_metadata", "")).partition("\n")
    return story_id, AsyncRespond(response_url=reply) if reply else None


async def tell_refusal(applied: actions.Applied, respond: AsyncRespond | None) -> None:
    """Answer a form's refused submission to its presser, ephemerally."""
    said = refusal(applied)
    if said is not None and respond is not None:
        await respond(response_type="ephemeral", replace_original=False, **said)


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
