"""What a delivery row says: its stories as stored now, rendered for its transport.

The delivery workers and `alertbot preview` both call `Renderer.render`, so a preview is exactly
what would be sent. Wording lives in the templates (`bot.render`, `bot.mail`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from bot.messages import mail
from bot.messages.mail import Merge, render_parts
from bot.messages.render import Item, item_context, slack_message, slack_thread_reply, slack_update
from bot.rules.gate import corroborate, gate, global_thresholds
from bot.settings import Config
from bot.stories.model import Story
from bot.transports import DeliveryError

DAILY_LISTED = 50  # a daily email lists more, and still reads in one sitting
RENDERED_KEPT = 256  # distinct daily digests kept rendered (topic mixes × dates × zones)


class Entry(NamedTuple):
    """One story in a message, shaped like the outbox's `items_of` rows."""

    story_id: str
    reason: str
    payload: str  # the stored story's JSON


@dataclass(frozen=True)
class Load:
    """What a row needs to render: its stories (`Entry`-shaped rows) and, for an edit, the
    posted message it edits."""

    items: list[Any]
    parent: Any = None


@dataclass(frozen=True)
class Renderer:
    config: Config
    key: bytes  # signs the unsubscribe links
    _rendered: dict[tuple[str, tuple[str, ...]], Merge] = field(default_factory=dict)

    def render(self, kind: str, transport: str, target: str, details: dict[str, Any] | None,
               load: Load, now: datetime) -> Any:
        """Slack: a list of (method, arguments) calls. Email: an `EmailMessage`, or for a daily
        digest usually an `Outgoing` (already serialized)."""
        address = target.partition(":")[2]
        if kind == "daily":
            return self._daily(details or {}, load, address, now)
        items = [self.item(Story.model_validate_json(m.payload), m.reason) for m in load.items]
        if kind != "test" and not items:
            raise DeliveryError("its stories are no longer stored", permanent=True)
        # Slack gets every item: rendering lists as many as fit and names the rest.
        commands = self.config.desk.slack.commands
        if kind == "update":
            return slack_update(load.parent.kind, items, address, load.parent.remote_id,
                                details or {}, commands)
        if kind == "facts":
            return [("chat.postMessage", slack_thread_reply(
                "facts", address, (details or {})["thread_ts"], story=item_context(items[0])))]
        if transport == "slack":
            return [("chat.postMessage", slack_message(kind, items, address, commands))]
        return mail.compose(kind, items, address, self.config.settings, self.key, now)

    def _daily(self, details: dict[str, Any], load: Load, address: str, now: datetime) -> Any:
        """A subscriber's daily digest: its stories as stored now, in the planned order.

        Readers whose digests hold the same stories, date and window share one rendering.
        """
        content = (json.dumps(details, sort_keys=True), tuple(m.payload for m in load.items))
        merge = self._rendered.get(content)
        if merge is None:
            alerted = set(details.get("alerted", ()))
            items = [self.item(Story.model_validate_json(m.payload), "", m.story_id in alerted)
                     for m in load.items]
            zone = ZoneInfo(details.get("timezone", "UTC"))
            parts = render_parts("daily", items[:DAILY_LISTED],
                                 more=max(0, len(items) - DAILY_LISTED),
                                 day=date.fromisoformat(details["date"]),
                                 since=datetime.fromisoformat(details["since"]).astimezone(zone))
            merge = Merge(parts, self.config.settings)
            if len(self._rendered) >= RENDERED_KEPT:
                self._rendered.pop(next(iter(self._rendered)))  # the oldest
            self._rendered[content] = merge
        return merge.address(address, self.key, now)

    def item(self, story: Story, reason: str, alerted: bool = False) -> Item:
        """A story as shown now: marked when a re-score took it below the desk's rule."""
        verdict = gate(story.impact, corroborate(story).count,
                       global_thresholds(self.config.desk.rules))
        return Item(story, reason, None if verdict.qualifies else verdict.reason, alerted)
