"""The durable outbox: matches become delivery rows, workers claim and settle them.

`planning` writes rows, `queue` moves them through their states, `queries` reads them for
the doors, and `daily` plans the daily digests. Callers use `outbox.<function>`.
"""

from bot.outbox.escalations import cancel
from bot.outbox.escalations import follow as follow_escalations
from bot.outbox.escalations import retire as retire_escalations
from bot.outbox.owners import enqueue_owner
from bot.outbox.planning import (
    Planned,
    add,
    add_many,
    enqueue_facts,
    enqueue_unfurl,
    enqueue_update,
    has_unplanned,
    plan_deliveries,
    record_matches,
)
from bot.outbox.queries import (
    depth,
    first_posted,
    get,
    items_of,
    items_of_many,
    listing,
    owner_of,
    owners_of,
    parent_of,
    posted,
    recent,
    stories_of,
    story_items,
    story_items_in,
)
from bot.outbox.queue import (
    DUE,
    NOT_DUE,
    PROCESS,
    backoff,
    claim,
    mark_failed,
    mark_sent,
    mark_sent_many,
    next_due,
    pace,
    pace_many,
    postpone,
    recover_leases,
    retry,
    take,
)

__all__ = [
    "DUE",
    "NOT_DUE",
    "PROCESS",
    "Planned",
    "add",
    "add_many",
    "backoff",
    "cancel",
    "claim",
    "depth",
    "enqueue_facts",
    "enqueue_owner",
    "enqueue_unfurl",
    "enqueue_update",
    "first_posted",
    "follow_escalations",
    "get",
    "has_unplanned",
    "items_of",
    "items_of_many",
    "listing",
    "mark_failed",
    "mark_sent",
    "mark_sent_many",
    "next_due",
    "owner_of",
    "owners_of",
    "pace",
    "pace_many",
    "parent_of",
    "plan_deliveries",
    "posted",
    "postpone",
    "recent",
    "record_matches",
    "recover_leases",
    "retire_escalations",
    "retry",
    "stories_of",
    "story_items",
    "story_items_in",
    "take",
]
