"""Buttons on alerts: "Key facts" posts them in the alert's thread, once per alert.

("Open story" is a link button: Slack opens the URL and sends an action we only acknowledge.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond

from bot import outbox
from bot.db import Database
from bot.messages.render import slack_blocks
from bot.slack_app.replies import Clock, ack_at_once, reply_later


def register(app: AsyncApp, db: Database, wake: Callable[[], None], clock: Clock) -> None:
    async def key_facts(respond: AsyncRespond, body: dict[str, Any],
                        action: dict[str, Any]) -> None:
        now = clock()
        await reply_later(respond, _queue_facts(db, wake, body, action["value"], now),
                          replace_original=False)

    app.action("key_facts")(ack=ack_at_once, lazy=[key_facts])
    app.action("open_story")(ack_at_once)


async def _queue_facts(db: Database, wake: Callable[[], None], body: dict[str, Any],
                       story_id: str, now: datetime) -> dict[str, Any] | None:
    """Queue the key facts into the pressed alert's thread; a reply only if they already are."""
    message = body.get("container", {})
    channel, ts = message.get("channel_id"), message.get("message_ts")
    if not channel or not ts:
        return None
    queued = await db.write(outbox.enqueue_facts, channel, ts, story_id,
                            body.get("user", {}).get("id", "?"), now)
    if queued:
        wake()  # the delivery workers post it, paced and retried like any message
        return None
    return slack_blocks("facts_already")

