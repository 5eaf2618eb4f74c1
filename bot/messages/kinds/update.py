"""`update`: when a story that a posted Slack message shows is re-scored, the message is edited
to show current figures (rendered again as its own kind) and one reply in its thread says what
changed (`outbox.enqueue_update`; details: the change and `story_id`). Template:
`slack/update.json.j2` (the reply)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.messages.kinds.base import Edit, Message, stories

if TYPE_CHECKING:
    from bot.messages import Renderer


class Update(Edit):
    name = "update"

    def render(self, renderer: Renderer, message: Message) -> Any:
        return self.edit(renderer, message, stories(renderer, message.load),
                         change=message.details)


KIND = Update()
