"""`/actionitems [today | week | words]`: recent action items, newest first, ephemerally."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond
from sqlalchemy import Connection

from bot.db import Database
from bot.messages.render import Item, item_context, slack_blocks
from bot.settings import CommandNames
from bot.slack_app.replies import Clock, ack_at_once, reply_later
from bot.stories import archive

DAYS = {"": 1, "today": 1, "week": 7}  # how far back each period looks
WORDS_DAYS = 30  # when words are given


def answer(db: Connection, text: str, now: datetime, commands: CommandNames) -> dict[str, Any]:
    """The reply to `/actionitems text` at `now`."""
    key = text.strip().lower()
    words = [] if key in DAYS else [w for w in re.findall(r"\w+", key) if len(w) > 1][:8]
    days = DAYS.get(key, WORDS_DAYS)
    stories, total = archive.action_items(db, now - timedelta(days=days), words)
    return slack_blocks("actionitems", days=days, words=words, total=total,
                        stories=[item_context(Item(s, "")) for s in stories],
                        more=total - len(stories), story_command=commands.story,
                        command=commands.actionitems)


def register(app: AsyncApp, db: Database, commands: CommandNames, clock: Clock) -> None:
    async def actionitems_command(respond: AsyncRespond, command: dict[str, Any]) -> None:
        now = clock()
        await reply_later(respond, db.lookup(answer, command.get("text", ""), now, commands))

    app.command(commands.actionitems)(ack=ack_at_once, lazy=[actionitems_command])
