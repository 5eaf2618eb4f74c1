"""What the action items' two modals share: Done (done.py) and Not relevant (dismiss.py).

The button's lazy half opens the modal at once (a `trigger_id` expires 3 s after the press, so
nothing is read first); the submission acks empty (which closes the modal) and stores the press
keyed by the view's id, so a replayed submission is recorded once; a refused one (someone
finished it first) is told to the presser through the press's response_url, which the modal
keeps (claims.form_metadata). Each door says only which modal it opens and how its submitted
values become a request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import Database
from bot.messages.render import slack_view
from bot.rules.claims import Request
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

# A submission's request, from its view's state values, the presser, their groups and name.
ReadForm = Callable[[dict[str, Any], str, frozenset[str], str | None], Request]


async def open_form(client: AsyncWebClient, body: dict[str, Any], template: str,
                    story_id: str) -> None:
    """The modal `template` for `story_id`, at once; the story, and where to answer a refusal,
    ride in `private_metadata` (3000 characters)."""
    await client.views_open(trigger_id=body["trigger_id"], view=slack_view(
        template, story_id=story_id, metadata=form_metadata(story_id, body)))


def register_form(app: AsyncApp, db: Database, desk: DeskConfig, clock: Clock,
                  wake: Callable[[], None], *, callback: str, template: str,
                  read: ReadForm) -> None:
    """The button `callback` opens the modal `template`, whose submission (`callback` too)
    stores the press `read` makes of it."""
    allowed = desk.slack.actions_allowed

    async def pressed(body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient) -> None:
        await open_form(client, body, template, story_of(action))

    async def submitted(body: dict[str, Any], view: dict[str, Any],
                        client: AsyncWebClient) -> None:
        now = clock()
        user = body.get("user", {}).get("id", "?")
        values = view.get("state", {}).get("values", {})
        request = read(values, user, await groups_of(client, allowed, user),
                       presser_name(body))
        story_id, respond = form_story(view)
        key = actions.press_key(str(view.get("id", "")), user, request.verb.value, story_id)
        applied = await db.write(record, story_id, request, now, key, allowed)
        if applied.outcome.applied:
            wake()  # the delivery workers edit the messages, paced and retried
        await tell_refusal(applied, respond)  # "Already done by …", to the presser only

    app.action(callback)(ack=ack_at_once, lazy=[pressed])
    app.view(callback)(ack=ack_at_once, lazy=[submitted])
