"""Done: the button opens a modal for an optional note; its submission records the press.

Like "Not relevant" (dismiss.py): the button's lazy half opens the modal at once (a `trigger_id`
expires 3 s after the press, so nothing is read first); the submission acks empty (which closes
the modal) and stores the press keyed by the view's id, so a replayed submission is recorded
once; a refused one (someone finished it first) is told to the presser through the press's
response_url, which the modal keeps (claims.form_metadata). The note is shown where the
state is: "Done by @ana: filed follow-up".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import Database
from bot.messages.render import slack_view
from bot.rules.claims import Request, Verb
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

CALLBACK = "item_done"


async def open_modal(client: AsyncWebClient, body: dict[str, Any], story_id: str) -> None:
    """The Done modal for `story_id`; the story rides in `private_metadata` (3000 characters)."""
    await client.views_open(trigger_id=body["trigger_id"], view=slack_view(
        "done_modal", story_id=story_id, metadata=form_metadata(story_id, body)))


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
        values = view.get("state", {}).get("values", {})
        note = values.get("note", {}).get("note", {}).get("value") or None
        request = Request(Verb.DONE, user, await groups_of(client, allowed, user), note=note,
                          name=presser_name(body))
        story_id, respond = form_story(view)
        key = actions.press_key(str(view.get("id", "")), user, Verb.DONE.value, story_id)
        applied = await db.write(record, story_id, request, now, key, allowed)
        if applied.outcome.applied:
            wake()  # the delivery workers edit the messages, paced and retried
        await tell_refusal(applied, respond)  # "Already done by …", to the presser only

    app.action(CALLBACK)(ack=ack_at_once, lazy=[pressed])
    app.view(CALLBACK)(ack=ack_at_once, lazy=[submitted])
