"""`daily`: a subscriber's daily digest email, planned by `bot/outbox/daily.py` with the action
items since their last one (details: `date`, `since`, `timezone`, `stories` best first,
`alerted`). Readers whose digests hold the same stories, date and window share one load per
claim and one rendering, addressed per reader (a mail merge). Templates:
`email/daily.{subject.txt,txt,html}`."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot import outbox
from bot.messages.kinds.base import Kind, Load, Message, Shared, with_owners
from bot.messages.mail import Merge, Parts, render_parts
from bot.stories.model import Story

if TYPE_CHECKING:
    from bot.messages import Renderer

LISTED = 50  # a daily email lists more than an instant one, and still reads in one sitting


class Daily(Kind):
    name = "daily"
    needs_stories = False  # an empty digest is sent when the desk asks for one

    def load(self, db: Connection, row: Any, shared: Shared) -> Load:
        key = (self.name, *row.details.get("stories", ()))
        found: Load | None = shared.get(key)
        if found is None:
            # With each story's action-item state: the digest says who has it.
            found = shared[key] = with_owners(db, Load(outbox.stories_of(db, row.details)))
        return found

    def render(self, renderer: Renderer, message: Message) -> Any:
        details, load = message.details, message.load
        content = (self.name, json.dumps(details, sort_keys=True),
                   json.dumps(load.owners, sort_keys=True), *(m.payload for m in load.items))
        merge = renderer.shared(content, lambda: Merge(
            self._parts(renderer, details, load), renderer.config.settings))
        return merge.address(message.address, renderer.key, message.now)

    def _parts(self, renderer: Renderer, details: dict[str, Any], load: Load) -> Parts:
        """Its stories as stored now, in the planned order, each with its owner; the window in
        the reader's zone."""
        alerted = set(details.get("alerted", ()))
        items = [renderer.item(Story.model_validate_json(m.payload), "", m.story_id in alerted,
                               load.owners.get(m.story_id))
                 for m in load.items]
        zone = ZoneInfo(details.get("timezone", "UTC"))
        return render_parts(self.name, items[:LISTED], more=max(0, len(items) - LISTED),
                            day=date.fromisoformat(details["date"]),
                            since=datetime.fromisoformat(details["since"]).astimezone(zone))


KIND = Daily()
