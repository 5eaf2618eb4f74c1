"""`update`: when a story that a posted Slack message shows is re-scored, the message is edited
to show current figures (rendered again as its own kind) and one reply in its thread says what
changed (`outbox.enqueue_update`; details: the change and `story_id`). Template:
`slack/update.json.j2` (the reply)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot import outbox
from bot.messages.kinds.base import Kind, Load, Message, Shared, stories, with_owners
from bot.messages.render import slack_update

if TYPE_CHECKING:
    from bot.messages import Renderer


class Update(Kind):
    name = "update"

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        """The posted message it edits (its kind and Slack ts), and the stories it shows."""
        parent = outbox.parent_of(db, row.parent_id)
        return with_owners(db, Load(outbox.items_of(db, parent.id), parent))

    def render(self, renderer: Renderer, message: Message) -> Any:
        from bot.messages.kinds import kind_of  # the registry imports this module

        items = stories(renderer, message.load)
        parent = message.load.parent
        edited = kind_of(parent.kind).slack(items, message.address, renderer.commands)
        return slack_update(edited, items, message.address, parent.remote_id, message.details)


KIND = Update()
