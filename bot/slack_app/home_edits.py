"""The "My alerts" tab's edits: a button opens a modal; its submission is checked, then saved.
"Stop DMs" (Slack asks to confirm) removes the DM route.

A button's lazy half opens the modal at once (a `trigger_id` lasts 3 s), reading only the
stored values it shows. A submission is checked in its ack half, before any network or database
call: a bad field is answered `response_action: errors` naming its block, so Slack shows it
next to the field and the modal stays open; nothing is saved. A good one is acked empty (the
modal closes) and the lazy half saves it, then publishes the Home tab again (home.py).

The rules are those of the other doors: a DM route's topics, impact, quiet hours and zone as
`/alerts me subscribe` reads them (alerts.py), an email subscriber's fields as the preference
page checks them (`subscribers.validate`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection

from bot.db import Database
from bot.messages.render import slack_view
from bot.readers import slack_routes, subscribers
from bot.readers.subscribers import Subscriber
from bot.rules.targets import SlackRoute
from bot.settings import DeskConfig
from bot.slack_app import home
from bot.slack_app.alerts import QUIET_RANGE, TOPIC, Problem, is_zone
from bot.slack_app.replies import Clock, ack_at_once

log = logging.getLogger(__name__)

DM, EMAIL = "home_dm", "home_email"  # the modals' callback ids
# subscribers.validate names a bad field by its own name; the email modal's block for each.
EMAIL_BLOCKS = {"email": "mode", "mode": "mode", "tz": "timezone", "digest_hour": "digest_hour"}

Problems = dict[str, Problem]  # block id → what is wrong with its value


@dataclass(frozen=True)
class DmForm:
    topics: tuple[str, ...]
    min_impact: float | None
    quiet_hours: str | None
    zone: str


@dataclass(frozen=True)
class EmailForm:
    checked: Subscriber  # mode, zone, topics and hour as subscribers.validate returns them
    paused_until: date | None


def field(view: dict[str, Any], block: str) -> str:
    """What the person left in a field (block and action share the name), as text."""
    state = view.get("state", {}).get("values", {}).get(block, {}).get(block, {})
    chosen = state.get("selected_option") or {}
    value = (state.get("value") or state.get("selected_time") or state.get("selected_date")
             or chosen.get("value") or "")
    return str(value).strip()


def read_dm(view: dict[str, Any]) -> DmForm | Problems:
    """The DM form's values, or every field that is wrong (pure: the ack half calls it)."""
    problems: Problems = {}
    topics = [w for w in re.split(r"[\s,;]+", field(view, "topics").lower()) if w]
    wrong = [w for w in topics if not TOPIC.match(w)]
    if wrong:
        problems["topics"] = Problem("not_a_topic", wrong[0])
    given = field(view, "impact")
    impact = _number(given)
    if given and (impact is None or not 1 <= impact <= 10):
        problems["impact"] = Problem("impact_range", given)
    quiet = field(view, "quiet") or None
    if quiet is not None and not QUIET_RANGE.match(quiet):
        problems["quiet"] = Problem("quiet_range", quiet)
    # An empty zone is the person's Slack zone (kept in private_metadata), else UTC.
    zone = field(view, "zone") or str(view.get("private_metadata") or "") or "UTC"
    zone = "UTC" if zone.upper() == "UTC" else zone
    if not is_zone(zone):
        problems["zone"] = Problem("not_a_zone", zone)
    if problems:
        return problems
    return DmForm(tuple(sorted(set(topics))), impact, quiet, zone)


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def read_email(view: dict[str, Any]) -> EmailForm | Problems:
    """The email form's values checked as the preference page checks them, or the bad field."""
    topics = field(view, "topics").replace(";", ",").split(",")
    try:
        checked = subscribers.validate(str(view.get("private_metadata", "")), field(view, "mode"),
                                       field(view, "timezone"), topics,
                                       field(view, "digest_hour"))
    except ValueError as exc:
        name = str(exc).partition(":")[0]
        block = EMAIL_BLOCKS.get(name, "mode")
        return {block: Problem(name, field(view, block))}
    given = field(view, "paused_until")
    try:
        paused = date.fromisoformat(given) if given else None
    except ValueError:
        return {"paused_until": Problem("paused_until", given)}
    return EmailForm(checked, paused)


def errors(problems: Problems) -> dict[str, str]:
    """The `errors` of a `response_action: errors` answer, worded by the template."""
    return slack_view("home_errors", problems=problems)


def save_email(db: Connection, email: str, form: EmailForm, now: datetime) -> bool:
    """Store the form for the subscriber `email`, keeping what the form does not show."""
    reader = subscribers.find(db, email)
    if reader is None:
        return False  # unsubscribed meanwhile: the modal changes nothing
    subscribers.add(db, replace(form.checked, min_impact=reader.min_impact,
                                paused_until=form.paused_until), now)
    return True


def register(app: AsyncApp, db: Database, desk: DeskConfig, clock: Clock) -> None:
    async def open_dm(body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        user = str(body.get("user", {}).get("id", ""))
        default_zone = str(action.get("value") or "")  # the profile's, as the tab was published
        made = await db.read(slack_routes.listing, user)
        route = made[0] if made else None
        await client.views_open(trigger_id=body["trigger_id"], view=slack_view(
            "home_dm_modal", topics=list(route.topics) if route else [],
            min_impact=route.min_impact if route else None,
            quiet_hours=route.quiet_hours if route else None,
            zone=route.timezone if route else default_zone, default_zone=default_zone))

    async def open_email(body: dict[str, Any], action: dict[str, Any],
                         client: AsyncWebClient) -> None:
        reader = await db.read(subscribers.find, str(action.get("value") or ""))
        if reader is None:
            log.info("My alerts: %s is no longer a subscriber; no modal", action.get("value"))
            return
        await client.views_open(trigger_id=body["trigger_id"],
                                view=slack_view("home_email_modal", reader=reader))

    async def check_dm(ack: AsyncAck, view: dict[str, Any]) -> None:
        await _answer(ack, read_dm(view))

    async def check_email(ack: AsyncAck, view: dict[str, Any]) -> None:
        await _answer(ack, read_email(view))

    async def submitted_dm(body: dict[str, Any], view: dict[str, Any],
                      client: AsyncWebClient) -> None:
        now = clock()
        form = read_dm(view)
        user = str(body.get("user", {}).get("id", ""))
        if isinstance(form, dict) or not user:
            return  # answered with its errors in the ack; nothing to save
        await db.write(slack_routes.save, SlackRoute(user, form.topics, form.min_impact, user,
                                                     now, form.quiet_hours, form.zone))
        await home.publish(client, db, desk, user, now)

    async def submitted_email(body: dict[str, Any], view: dict[str, Any],
                         client: AsyncWebClient) -> None:
        now = clock()
        form = read_email(view)
        user = str(body.get("user", {}).get("id", ""))
        if isinstance(form, dict):
            return
        # The address came back from the modal: save only while it is still the person's.
        if (await home.profile(client, user)).email != form.checked.email:
            log.warning("My alerts: %s's Slack address is no longer %s; not saved", user,
                        form.checked.email)
            return
        await db.write(save_email, form.checked.email, form, now)
        await home.publish(client, db, desk, user, now)

    async def stop_dm(body: dict[str, Any], client: AsyncWebClient) -> None:
        now = clock()
        user = str(body.get("user", {}).get("id", ""))
        await db.write(slack_routes.remove, user)
        await home.publish(client, db, desk, user, now)

    app.action("home_edit_dm")(ack=ack_at_once, lazy=[open_dm])
    app.action("home_stop_dm")(ack=ack_at_once, lazy=[stop_dm])
    app.action("home_edit_email")(ack=ack_at_once, lazy=[open_email])
    app.view(DM)(ack=check_dm, lazy=[submitted_dm])
    app.view(EMAIL)(ack=check_email, lazy=[submitted_email])



async def _answer(ack: AsyncAck, form: object) -> None:
    """Close the modal (an empty ack), or keep it open with each bad field's error shown."""
    if isinstance(form, dict):
        await ack(response_action="errors", errors=errors(form))
    else:
        await ack()
