"""`escalate`: an action item still unclaimed after its route's `escalate_after` — a reply in
its alert's thread naming everyone in `escalate_to`, a DM to each listed user, a post in each
listed channel (`outbox.escalations`; details: `story_id`, `route`, `how`, `round`, `of`, `to`).
Template: `slack/escalate.json.j2`.

Checked as it is sent: an item claimed, done or dismissed since, or re-scored below the route's
`escalate_impact`, is not escalated (the row is settled cancelled); a snoozed one waits for the
snooze's end. The thread reply waits for its alert to be posted (looked at again at the alert's
retry, or a few seconds on); if the alert is dead, it is posted in the channel instead.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot import outbox
from bot.messages.kinds.base import Kind, Load, Message, Shared, stories
from bot.messages.render import item_context, slack_blocks
from bot.metrics import Metrics
from bot.outbox import escalations
from bot.rules.escalation import Verdict, still_applies
from bot.stories import actions

if TYPE_CHECKING:
    from bot.messages import Renderer


class Escalate(Kind):
    name = "escalate"

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        story_id = row.details["story_id"]
        item, _ = actions.read(db, story_id)
        stored = outbox.story_items(db, story_id)
        impact = json.loads(stored[0].payload)["impact"] if stored else None
        # Due at `not_before`: a snooze that ends after that still holds it.
        verdict = still_applies(item, row.not_before, impact, row.details["escalate_impact"])
        parent = escalations.thread_of(db, row.parent_id) if row.parent_id else None
        if verdict.send and parent is not None and parent.status not in ("sent", "dead"):
            # The alert is still to go (paced, retried): the reply follows it, not before.
            verdict = Verdict(False, "its alert is not posted yet",
                              max(parent.not_before, row.not_before))  # its retry, at least
        return Load(stored, parent, withheld=None if verdict.send else verdict)

    def sent(self, row: Any, metrics: Metrics) -> None:
        metrics.escalations_sent.labels(row.details["route"]).inc()

    def render(self, renderer: Renderer, message: Message) -> Any:
        details, parent = message.details, message.load.parent
        item = stories(renderer, message.load)[0]
        said = slack_blocks(self.name, story=item_context(item), how=details["how"],
                            route=details["route"], mentions=details["to"],
                            round=details["round"], of=details["of"])
        said.update(channel=message.address, unfurl_links=False, unfurl_media=False)
        # In the alert's thread; if the alert is dead, in the channel itself.
        if details["how"] == "thread" and parent is not None and parent.remote_id:
            said["thread_ts"] = parent.remote_id
        return [("chat.postMessage", said)]


KIND = Escalate()
