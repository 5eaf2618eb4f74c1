"""`owner`: when an action item is claimed, done, dismissed or re-opened, each posted message of
its story is edited to show its figures and who owns it, and one reply in its thread says what
changed (`outbox.owners.enqueue_owner`; details: `story_id` and `owner`, the state as changed).
Template: `slack/owner.json.j2` (the reply); the edit is the message's own kind, rendered again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot import outbox
from bot.messages.kinds.base import Kind, Load, Message, Shared, stories, with_owners
from bot.messages.render import item_context, owner_line, slack_thread_reply

if TYPE_CHECKING:
    from bot.messages import Renderer


class Owner(Kind):
    name = "owner"

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        """The posted message it edits, and the stories that message shows."""
        parent = outbox.parent_of(db, row.parent_id)
        return with_owners(db, Load(outbox.items_of(db, parent.id), parent))

    def render(self, renderer: Renderer, message: Message) -> Any:
        from bot.messages.kinds import kind_of  # the registry imports this module

        story_id, owner = message.details["story_id"], message.details["owner"]
        owner = {**owner, "says": owner_line(owner)}
        items = [replace(i, owner=owner) if i.story.id == story_id else i
                 for i in stories(renderer, message.load)]
        parent = message.load.parent
        edited = kind_of(parent.kind).slack(items, message.address, renderer.commands)
        changed = next((i for i in items if i.story.id == story_id), items[0])
        reply = slack_thread_reply(self.name, message.address, parent.remote_id,
                                   story=item_context(changed), owner=owner)
        return [("chat.update", {**edited, "ts": parent.remote_id}), ("chat.postMessage", reply)]


KIND = Owner()
