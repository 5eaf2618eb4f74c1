"""`/story <id | url | words>`: a story's key facts, sources and score history, and its action
item's state and history, ephemerally."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from sqlalchemy import Connection

from bot import outbox
from bot.db import Database
from bot.messages.render import Item, item_context, owner_line, slack_blocks, story_context
from bot.settings import CommandNames
from bot.slack_app.replies import ack_at_once, later, reply_later
from bot.stories import actions, archive, search
from bot.stories.model import Story


def answer(db: Connection, query: str, commands: CommandNames) -> dict[str, Any]:
    """The reply to `/story query`: the story, the best five to pick from, none, or usage."""
    if not query.strip():
        return slack_blocks("story_usage", command=commands.story)
    found = search.find(db, _unwrap_link(query))
    if not found:
        return slack_blocks("story_none", query=query, command=commands.story,
                            actionitems=commands.actionitems)
    if len(found) > 1:
        return slack_blocks("story_choices", query=query,
                            stories=[item_context(Item(s, "")) for s in found])
    return _view(db, found[0])


def show(db: Connection, story_id: str, commands: CommandNames) -> dict[str, Any]:
    """One story by id (a pick among several)."""
    story = archive.load(db, [story_id]).get(story_id)
    if story is None:
        return slack_blocks("story_none", query=story_id, command=commands.story,
                            actionitems=commands.actionitems)
    return _view(db, story)


def _view(db: Connection, story: Story) -> dict[str, Any]:
    view = story_context(story, archive.history(db, story.id), archive.alerted_where(db, story.id))
    # Its action item: the state as every message shows it, and the presses that changed it.
    owner = outbox.owner_of(db, story.id)
    presses = [row for row in actions.history(db, story.id) if row.applied]
    return slack_blocks("story", story=view, owner_says=owner_line(owner) if owner else None,
                        presses=presses)


def _unwrap_link(text: str) -> str:
    # Slack sends a pasted URL as <https://…> or <https://…|label>.
    match = re.fullmatch(r"\s*<(https?://[^|>]+)(?:\|[^>]*)?>\s*", text)
    return match.group(1) if match else text


def register(app: AsyncApp, db: Database, commands: CommandNames) -> None:
    # Asked by many people at once: the ack, then the answer in a task of its own (`later`),
    # not a lazy listener, whose copy of each request cost ~1.4 ms of the loop's CPU.
    async def story_command(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]
                            ) -> None:
        await ack_at_once(ack)
        later(reply_later(respond, db.lookup(answer, command.get("text", ""), commands)))

    async def story_pick(ack: AsyncAck, respond: AsyncRespond, action: dict[str, Any]
                         ) -> None:
        await ack_at_once(ack)
        later(reply_later(respond, db.lookup(show, action["value"], commands),
                          replace_original=True))

    app.command(commands.story)(story_command)
    app.action(re.compile(r"^story_pick_\d+$"))(story_pick)
