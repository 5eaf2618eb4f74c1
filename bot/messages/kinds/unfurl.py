"""`unfurl`: previews of the story links a person shared in Slack (the Slack app's
`link_shared` event, queued by `outbox.enqueue_unfurl`). Details: `links` (URL → story id) and
where the links are — a posted message's `ts`, or a draft's `unfurl_id` and `source`. One
`chat.unfurl` call maps each URL to its preview's blocks. Template: `slack/unfurl.json.j2`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot import outbox
from bot.messages.kinds.base import Kind, Load, Message, Shared, stories
from bot.messages.render import item_context, slack_blocks

if TYPE_CHECKING:
    from bot.messages import Renderer


class Unfurl(Kind):
    name = "unfurl"

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        return Load(outbox.story_items_in(db, sorted(set(row.details["links"].values()))))

    def render(self, renderer: Renderer, message: Message) -> Any:
        # A story deleted since is left out; none left fails the row for good (`stories`).
        shown = {item.story.id: item for item in stories(renderer, message.load)}
        details = message.details
        unfurls = {url: {"blocks": slack_blocks(self.name, story=item_context(shown[story_id]),
                                                story_command=renderer.commands.story)["blocks"]}
                   for url, story_id in details["links"].items() if story_id in shown}
        # Slack takes a posted message by channel and ts, a draft by unfurl_id and source.
        where = ({"channel": message.address, "ts": details["ts"]} if "ts" in details
                 else {"unfurl_id": details["unfurl_id"], "source": details["source"]})
        return [("chat.unfurl", {**where, "unfurls": unfurls})]


KIND = Unfurl()
