"""`owner`: when an action item is claimed, done, dismissed or re-opened, each posted message of
its story is edited to show its figures and who owns it, and one reply in its thread says what
changed (`outbox.owners.enqueue_owner`; details: `story_id` and `owner`, the state as changed).
Template: `slack/owner.json.j2` (the reply); the edit is the message's own kind, rendered again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.messages.kinds.base import Edit, Message, stories
from bot.messages.render import owner_line

if TYPE_CHECKING:
    from bot.messages import Renderer


class Owner(Edit):
    name = "owner"

    def render(self, renderer: Renderer, message: Message) -> Any:
        # The row keeps the state as it was changed: its edit and line say that change.
        story_id, owner = message.details["story_id"], message.details["owner"]
        owner = {**owner, "says": owner_line(owner)}
        items = [replace(i, owner=owner) if i.story.id == story_id else i
                 for i in stories(renderer, message.load)]
        return self.edit(renderer, message, items, owner=owner)


KIND = Owner()
