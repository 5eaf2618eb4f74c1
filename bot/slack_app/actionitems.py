"""`/actionitems [today | week | words]`: recent action items, newest first, ephemerally;
`/actionitems open | mine | claimed | done`: the desk's items in that state, with their owner."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond
from sqlalchemy import Connection

from bot.db import Database
from bot.messages.render import Item, item_context, owner_line, slack_blocks
from bot.rules.claims import State
from bot.settings import CommandNames
from bot.slack_app.replies import Clock, ack_at_once, reply_later
from bot.stories import actions, archive

DAYS = {"": 1, "today": 1, "week": 7}  # how far back each period looks
WORDS_DAYS = 30  # when words are given
# The states a person can ask for; `mine` is what they have claimed.
STATES = {"open": State.OPEN, "claimed": State.CLAIMED, "done": State.DONE,
          "mine": State.CLAIMED}
LISTED = 15


def answer(db: Connection, text: str, now: datetime, commands: CommandNames,
           user: str = "") -> dict[str, Any]:
    """The reply to `/actionitems text` from `user` at `now`."""
    key = text.strip().lower()
    if key in STATES:
        return _in_state(db, key, user, commands)
    words = [] if key in DAYS else [w for w in re.findall(r"\w+", key) if len(w) > 1][:8]
    days = DAYS.get(key, WORDS_DAYS)
    stories, total = archive.action_items(db, now - timedelta(days=days), words)
    return slack_blocks("actionitems", days=days, words=words, total=total,
                        stories=[item_context(Item(s, "")) for s in stories],
                        more=total - len(stories), story_command=commands.story,
                        command=commands.actionitems, state=None)


def _in_state(db: Connection, key: str, user: str, commands: CommandNames) -> dict[str, Any]:
    found = actions.items(db, STATES[key], LISTED + 1, by=user if key == "mine" else None)
    listed = [{**item, "says": owner_line(_owner(item))} for item in found[:LISTED]]
    return slack_blocks("actionitems", state=key, items=listed, more=len(found) > LISTED,
                        story_command=commands.story, command=commands.actionitems)


def _owner(item: dict[str, Any]) -> dict[str, Any]:
    """The owner line's view of an item: times as UTC ISO text, as the outbox keeps them."""
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"state": item["state"], "by": item["by"], "at": iso(item["at"]),
            "note": item["note"], "reason": item["reason"],
            "snoozed_until": iso(item["snoozed_until"])}


def register(app: AsyncApp, db: Database, commands: CommandNames, clock: Clock) -> None:
    async def actionitems_command(respond: AsyncRespond, command: dict[str, Any]) -> None:
        now = clock()
        await reply_later(respond, db.lookup(answer, command.get("text", ""), now, commands,
                                             command.get("user_id", "")))

    app.command(commands.actionitems)(ack=ack_at_once, lazy=[actionitems_command])
