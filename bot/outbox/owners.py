"""When an action item changes hands, every posted message of its story says so.

One `owner` row per posted Slack message (alerts and batches in every channel) per state change,
written in the transaction that stored the change: the edit and its thread line are then paced
and retried like any message. The key names the item's version, so a change is queued once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bot.outbox.planning import add
from bot.outbox.queries import posted


def enqueue_owner(db: Connection, story_id: str, version: int, owner: dict[str, Any],
                  now: datetime) -> int:
    """Queue the edit of each posted message of `story_id` for this state; return how many."""
    queued = 0
    for parent in posted(db, story_id):
        queued += add(db, now, dedupe=f"owner:{parent.id}:{story_id}:{version}",
                      transport="slack", target=parent.target, kind="owner",
                      reason=f"{story_id} {owner['state']} by {owner['by'] or 'nobody'}",
                      parent_id=parent.id,
                      details={"story_id": story_id, "owner": owner}) is not None
    return queued
