"""Buttons on alerts: "Key facts" posts them in the alert's thread, once per alert.

("Open story" is a link button: Slack opens the URL and sends an action we only acknowledge.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot import outbox
from bot.db import Database
from bot.messages.render import slack_blocks


def register(app: AsyncApp, db: Database, wake: Callable[[], None]) -> None:
    @app.action("key_facts")
    async def key_facts(ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any],
                        action: dict[str, Any]) -> None:
        await ack()
        message = body.get("container", {})
        channel, ts = message.get("channel_id"), message.get("message_ts")
        if not channel or not ts:
            return
        queued = await db.write(outbox.enqueue_facts, channel, ts, action["value"],
                                body.get("user", {}).get("id", "?"), datetime.now(UTC))
        if queued:
            wake()  # the delivery workers post it, paced and retried like any message
        else:
            await respond(response_type="ephemeral", replace_original=False,
                          **slack_blocks("facts_already"))

    @app.action("open_story")
    async def open_story(ack: AsyncAck) -> None:
        await ack()
