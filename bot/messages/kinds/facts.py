"""`facts`: a story's key facts as a reply in an alert's thread, when someone presses its
"Key facts" button (`outbox.enqueue_facts`; details: `story_id`, `thread_ts`). Template:
`slack/facts.json.j2`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot import outbox
from bot.messages.kinds.base import Kind, Load, Message, Shared, stories
from bot.messages.render import item_context, slack_thread_reply

if TYPE_CHECKING:
    from bot.messages import Renderer


class Facts(Kind):
    name = "facts"

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        return Load(outbox.story_items(db, row.details["story_id"]))

    def render(self, renderer: Renderer, message: Message) -> Any:
        item = stories(renderer, message.load)[0]
        return [("chat.postMessage", slack_thread_reply(
            self.name, message.address, message.details["thread_ts"], story=item_context(item)))]


KIND = Facts()
