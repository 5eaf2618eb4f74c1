"""Not relevant: the button opens a modal asking why; its submission records the dismissal.

The button's lazy half opens the modal at once (a `trigger_id` expires 3 s after the press, so
nothing is read first); the submission acks empty (which closes the modal) and stores the press
keyed by the view's id, so a retried submission is recorded once; a refused one is told to the
presser through the press's response_url, which the modal keeps (claims.form_metadata).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import Database
from bot.messages.render import slack_view
from bot.rules.claims import Reason, Request, Verb
from bot.settings import DeskConfig
from bot.slack_app.claims import (
    form_metadata,
    form_story,
    groups_of,
    presser_name,
    record,
    story_of,
    tell_refusal,
)
from bot.slack_app.replies import Clock, ack_at_once
from bot.stories import actions

CALLBACK = "item_dismiss"


def register(app: AsyncApp, db: Database, desk: DeskConfig, clock: Clock,
             wake: Callable[[], None]) -> None:
    allowed = desk.slack.actions_allowed

    async def pressed(body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        await open_modal(client, body, story_of(action))

    async def submitted(body: dict[str, Any], view: dict[str, Any],
                        client: AsyncWebClient) -> None:
        now = clock()
        user = body.get("user", {}).get("id", "?")
        request = _request(view, user, await groups_of(client, allowed, user),
                           presser_name(body))
        applied = await _store(db, view, request, now, allowed)
        if applied.outcome.applied:
            wake()  # the delivery workers edit the messages, paced and retried
        await tell_refusal(applied, form_story(view)[1])  # to the presser only

    app.action(CALLBACK)(ack=ack_at_once, lazy=[pressed])
    app.view(CALLBACK)(ack=ack_at_once, lazy=[submitted])


async def open_modal(client: AsyncWebClient, body: dict[str, Any], story_id: str) -> None:
    """The Not-relevant modal for `story_id`, at once: its trigger_id expires in 3 s."""
    await client.views_open(trigger_id=body["trigger_id"], view=slack_view(
        "dismiss_modal", story_id=story_id, metadata=form_metadata(story_id, body)))


def _request(view: dict[str, Any], user: str, groups: frozenset[str],
             name: str | None) -> Request:
    values = view.get("state", {}).get("values", {})
    chosen = (values.get("reason", {}).get("reason", {}).get("selected_option") or {})
    note = values.get("note", {}).get("note", {}).get("value") or None
    try:
        reason = Reason(chosen.get("value", "other"))
    except ValueError:
        reason = Reason.OTHER  # a forged or older option: still a dismissal, reason unknown
    return Request(Verb.DISMISS, user, groups, note=note, reason=reason, name=name)


async def _store(db: Database, view: dict[str, Any], request: Request, now: datetime,
                 allowed: Collection[str] | None) -> actions.Applied:
    story_id = form_story(view)[0]
    key = actions.press_key(str(view.get("id", "")), request.user, request.verb.value, story_id)
    return await db.write(record, story_id, request, now, key, allowed)
