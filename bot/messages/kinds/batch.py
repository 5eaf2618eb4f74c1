"""`batch`: several action items in one instant message, when a target's batch window or its
quiet hours gathered them (`outbox.plan_deliveries`). In Slack it lists as many as fit and
names the rest by id. Templates: `slack/batch.json.j2`, `email/batch.{subject.txt,txt,html}`.

Stored as `digest` before migration 0009; "digest" now means only the daily digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.messages.kinds.base import Kind
from bot.messages.render import Item, slack_listing
from bot.settings import CommandNames


class Batch(Kind):
    name = "batch"
    formerly = ("digest",)  # rows an older replica writes during a rolling upgrade
    instant = True

    def slack(self, items: Sequence[Item], channel: str, commands: CommandNames
              ) -> dict[str, Any]:
        return slack_listing(self.name, items, channel, commands)


KIND = Batch()
