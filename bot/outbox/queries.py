"""Read queries for the doors: what was sent to whom, when and why (`alertbot deliveries`,
`/alerts status`, a posted message's thread)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, literal, null, select

from bot.db.schema import ACTION_ITEMS, DELIVERIES, MATCHES, STORIES
from bot.outbox.queue import DUE


def depth(db: Connection, now: datetime) -> dict[str, int]:
    """How many rows wait (pending, failed) or are in flight (sending), by status; pending rows
    not due before a later time (an escalation's round) are `scheduled`, not backlog."""
    scheduled = and_(DELIVERIES.c.status == "pending", DELIVERIES.c.not_before > now)
    label = case((scheduled, literal("scheduled")), else_=DELIVERIES.c.status)
    rows = db.execute(select(label, func.count())
                      .where(DELIVERIES.c.status.in_((*DUE, "sending")))
                      .group_by(label))
    return {status: int(count) for status, count in rows}


def items_of(db: Connection, delivery_id: int) -> list[Any]:
    """The stories a delivery row carries, with each one's reason, oldest match first."""
    rows = db.execute(
        select(MATCHES.c.story_id, MATCHES.c.reason, MATCHES.c.why, STORIES.c.payload)
        .join(STORIES, STORIES.c.id == MATCHES.c.story_id)
        .where(MATCHES.c.delivery_id == delivery_id).order_by(MATCHES.c.id)
    )
    return list(rows)


def items_of_many(db: Connection, delivery_ids: list[int]
                  ) -> tuple[dict[int, list[Any]], dict[str, dict[str, Any]]]:
    """`items_of` for several rows in one query (a claim's), by delivery id; and, read in
    the same query, the action-item state of each of their stories acted on (`owners_of`)."""
    found: dict[int, list[Any]] = {}
    owners: dict[str, dict[str, Any]] = {}
    if not delivery_ids:
        return found, owners
    for row in db.execute(_ITEMS_OF_MANY, {"ids": delivery_ids}):
        found.setdefault(row.delivery_id, []).append(row)
        if row.owner_state is not None:
            owners[row.story_id] = _owner(row, "owner_")
    return found, owners


def get(db: Connection, delivery_id: int) -> Any:
    return db.execute(select(DELIVERIES).where(DELIVERIES.c.id == delivery_id)).one()


def listing(db: Connection, status: str | None = None, limit: int = 200) -> list[Any]:
    query = select(DELIVERIES).order_by(DELIVERIES.c.id.desc()).limit(limit)
    if status:
        query = query.where(DELIVERIES.c.status == status)
    return list(db.execute(query))


def recent(db: Connection, target: str, limit: int = 5) -> list[Any]:
    """The latest alerts and batches to one target, newest first (for `/alerts status`): the
    rows that carry matches, not an escalation, a preview or an edit sent there."""
    return list(db.execute(
        select(DELIVERIES.c.kind, DELIVERIES.c.status, DELIVERIES.c.created_at,
               DELIVERIES.c.sent_at, DELIVERIES.c.reason)
        .where(DELIVERIES.c.target == target,
               DELIVERIES.c.id.in_(select(MATCHES.c.delivery_id)
                                   .where(MATCHES.c.target == target)))
        .order_by(DELIVERIES.c.id.desc()).limit(limit)
    ))


def posted(db: Connection, story_id: str) -> list[Any]:
    """Slack messages already posted that show `story_id` as a match (alerts and batches:
    only the rows `plan_deliveries` writes carry matches, whatever their kind is called)."""
    return list(db.execute(
        select(DELIVERIES.c.id, DELIVERIES.c.target)
        .join(MATCHES, MATCHES.c.delivery_id == DELIVERIES.c.id)
        .where(MATCHES.c.story_id == story_id, DELIVERIES.c.transport == "slack",
               DELIVERIES.c.status == "sent")
    ))


def first_posted(db: Connection, story_id: str) -> datetime | None:
    """When the story was first sent to Slack (an alert or a batch carrying it), for the
    time-to-claim metric; None if it never was."""
    found: datetime | None = db.scalar(
        select(func.min(DELIVERIES.c.sent_at))
        .join(MATCHES, MATCHES.c.delivery_id == DELIVERIES.c.id)
        .where(MATCHES.c.story_id == story_id, DELIVERIES.c.transport == "slack",
               DELIVERIES.c.status == "sent"))
    return found


def owners_of(db: Connection, story_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The action-item state of each story acted on, as an `owner` row keeps it (times as UTC
    ISO text), so a message rendered again (a re-score's edit, a later post) still shows it."""
    if not story_ids:
        return {}
    rows = db.execute(_OWNERS_OF, {"ids": story_ids})
    return {row.story_id: _owner(row) for row in rows}


# Built once (a claim runs the first, an edit of a posted message the second): building a
# select with an `in_` list cost more than SQLite takes to run it. The claim's reads each
# story's action item in the same statement (a left join): one statement fewer on the path.
_OWNER_COLUMNS = ("state", "by", "at", "note", "reason", "snoozed_until", "by_name")
_ITEMS_OF_MANY = (
    select(MATCHES.c.delivery_id, MATCHES.c.story_id, MATCHES.c.reason, MATCHES.c.why,
           STORIES.c.payload,
           *(ACTION_ITEMS.c[name].label(f"owner_{name}") for name in _OWNER_COLUMNS))
    .join(STORIES, STORIES.c.id == MATCHES.c.story_id)
    .outerjoin(ACTION_ITEMS, ACTION_ITEMS.c.story_id == MATCHES.c.story_id)
    .where(MATCHES.c.delivery_id.in_(bindparam("ids", expanding=True))).order_by(MATCHES.c.id)
)
_OWNERS_OF = select(ACTION_ITEMS).where(ACTION_ITEMS.c.story_id.in_(
    bindparam("ids", expanding=True)))


def owner_of(db: Connection, story_id: str) -> dict[str, Any] | None:
    """`owners_of` for one story (`/story`'s answer), None if nobody acted on it: a statement
    built once, where an `in_` list built per call cost ~0.5 ms of the answer's CPU."""
    row = db.execute(_OWNER, {"story_id": story_id}).first()
    return _owner(row) if row is not None else None


_OWNER = select(ACTION_ITEMS).where(ACTION_ITEMS.c.story_id == bindparam("story_id"))


def _owner(row: Any, prefix: str = "") -> dict[str, Any]:
    """An action item's `owner` dict from its row (its columns named `prefix` + name)."""
    found = {name: getattr(row, prefix + name) for name in _OWNER_COLUMNS}
    for name in ("at", "snoozed_until"):
        found[name] = found[name].isoformat() if found[name] else None
    return found


def parent_of(db: Connection, delivery_id: int) -> Any:
    """The delivery row an update edits: its kind and the posted message's id (Slack ts)."""
    return db.execute(select(DELIVERIES.c.id, DELIVERIES.c.kind, DELIVERIES.c.remote_id)
                      .where(DELIVERIES.c.id == delivery_id)).one()


def story_items(db: Connection, story_id: str) -> list[Any]:
    """One story shaped like `items_of` rows, for messages about a story rather than a match."""
    return list(db.execute(
        select(STORIES.c.id.label("story_id"), literal("").label("reason"),
               null().label("why"), STORIES.c.payload)
        .where(STORIES.c.id == story_id)
    ))


def story_items_in(db: Connection, story_ids: list[str]) -> list[Any]:
    """`story_items` for several stories at once (a message's shared links), in one read."""
    return list(db.execute(
        select(STORIES.c.id.label("story_id"), literal("").label("reason"),
               null().label("why"), STORIES.c.payload)
        .where(STORIES.c.id.in_(story_ids))
    ))


def stories_of(db: Connection, details: dict[str, Any]) -> list[Any]:
    """A daily row's stories as stored now, in the row's order, shaped like `items_of` rows."""
    ids: list[str] = details.get("stories", [])
    if not ids:
        return []
    rows = {row.story_id: row for row in db.execute(
        select(STORIES.c.id.label("story_id"), STORIES.c.payload).where(STORIES.c.id.in_(ids))
    )}
    return [rows[i] for i in ids if i in rows]
