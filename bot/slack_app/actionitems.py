"""`/actionitems [today | week | words]`: recent action items, newest first, ephemerally."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from sqlalchemy import Connection

from bot.db import Database
from bot.messages.render import Item, item_context, slack_blocks
from bot.settings import CommandNames
from bot.stories import archive

PERIODS = {"": ("the last 24 hours", timedelta(hours=24)),
           "today": ("the last 24 hours", timedelta(hours=24)),
           "week": ("the last 7 days", timedelta(days=7))}
WORDS_PERIOD = ("the last 30 days", timedelta(days=30))


def answer(db: Connection, text: str, now: datetime, commands: CommandNames) -> dict[str, Any]:
    """The reply to `/actionitems text` at `now`."""
    key = text.strip().lower()
    words: list[str] = []
    if key in PERIODS:
        label, span = PERIODS[key]
    else:
        label, span = WORDS_PERIOD
        words = [w for w in re.findall(r"\w+", key) if len(w) > 1][:8]
    stories, total = archive.action_items(db, now - span, words)
    return slack_blocks("actionitems", period=label, words=" ".join(words), total=total,
                        stories=[item_context(Item(s, "")) for s in stories],
                        more=total - len(stories), story_command=commands.story)


def register(app: AsyncApp, db: Database, commands: CommandNames) -> None:
    @app.command(commands.actionitems)
    async def actionitems_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        # One indexed read, answered on the ack itself (as /story).
        reply = await db.lookup(answer, command.get("text", ""), datetime.now(UTC), commands)
        await ack(response_type="ephemeral", **reply)
