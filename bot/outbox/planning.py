"""Planning: matches and digests become delivery rows, one per message and target.

Every row is written before anything is sent, with a unique dedupe key, so a story goes to a
target once however often it is planned (restarts, replicas, a re-ingested file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, null, select

from bot.db import bulk
from bot.db.schema import DELIVERIES, MATCHES, STORIES
from bot.outbox import escalations  # which calls back here: attributes read when called
from bot.rules.batching import in_quiet_hours, plan
from bot.rules.reasons import to_json
from bot.rules.targets import Match, Target


def record_matches(
    db: Connection, matches: Sequence[Match], now: datetime, seen_before: Set[str]
) -> int:
    """Store the matches that should be sent and are not yet known; return how many.

    Only stories in `seen_before` (stored earlier) can already have matches; the unique
    (target, story) constraint backs this up.
    """
    wanted = [m for m in matches if m.send]
    if not wanted:
        return 0
    known: set[tuple[str, str]] = set()
    story_ids = sorted({m.story_id for m in wanted} & set(seen_before))
    for start in range(0, len(story_ids), 500):
        rows = db.execute(
            select(MATCHES.c.target, MATCHES.c.story_id).where(
                MATCHES.c.story_id.in_(story_ids[start : start + 500])
            )
        )
        known.update((row.target, row.story_id) for row in rows)
    fresh = [m for m in wanted if (m.target.key, m.story_id) not in known]
    if fresh:
        worded: dict[tuple[int, ...], tuple[str, str]] = {}
        stamp = bulk.stamper(db)(now)  # one time for every row: converted once
        stored: list[tuple[Any, ...]] = []
        for m in fresh:
            # Reasons share their clauses (one per gate figure and target: rules.gate), so
            # each distinct reason is worded and serialised once, keyed by its clauses' ids
            # (alive in `fresh` while this runs).
            key = tuple(map(id, m.why))
            reason, why = worded.get(key) or worded.setdefault(key, (m.reason, to_json(m.why)))
            stored.append((m.target.key, m.story_id, m.version, reason, why, stamp))
        # through the driver, as plain tuples made here (bot/db/bulk.py)
        bulk.insert_values(db, MATCHES, _MATCH_COLUMNS, stored)
    return len(fresh)


_MATCH_COLUMNS = ("target", "story_id", "version", "reason", "why", "matched_at")



@dataclass(frozen=True)
class Planned:
    target: str
    kind: str
    story_ids: tuple[str, ...]
    reason: str



def plan_deliveries(
    db: Connection, targets: Mapping[str, Target], now: datetime, close_windows: bool = False
) -> list[Planned]:
    """Group pending matches into delivery rows, target by target, as the batch window allows.

    Each target is decided on a count of its pending matches (and their highest impact, for
    quiet hours); only the items of targets that send now are read. Reading every pending item
    each time made an ingest of held batches quadratic: 10,000 stories in chunks of 1,000 read
    39,000 rows to send none of the held ones. Every step is one statement for all targets
    (their last message, their items, the rows, the matches' links): a push against 100 routes
    plans 100 rows, and a statement per row and target was most of its cost.
    """
    quiet = {key for key, target in targets.items()
             if in_quiet_hours(now, target.quiet_hours, target.timezone)}
    # a route removed from the config: its items are left for the record
    known = [(targets[key], count, impact, last)
             for key, count, impact, last in db.execute(_PENDING if quiet else _COUNTED)
             if key in targets]
    sending: list[tuple[Target, str, float | None]] = []  # target, why, lowest impact sent
    for target, count, impact, last in known:
        if target.key in quiet:
            # Held until quiet hours end, then they go as one message; the urgent go now.
            if impact >= target.break_through_impact:
                why = f"impact ≥ {target.break_through_impact:g} breaks through quiet hours"
                sending.append((target, why, target.break_through_impact))
            continue
        decision = plan(count, last, target.batch_window, now, close_windows)
        if decision.send:
            sending.append((target, decision.reason, None))
    items = _items(db, [target.key for target, _, _ in sending])
    groups = [(target, [item for item in items[target.key]
                        if least is None or item.impact >= least], why)
              for target, why, least in sending]
    # `_COUNTED` also counts matches whose story is gone (deleted by hand); `_items`, joined
    # to `stories` as `_PENDING` is, leaves them out: such a target plans nothing, as before.
    return _enqueue(db, [group for group in groups if group[1]], now)


# Built once: planning runs them for every chunk an ingest stores. A target's last message
# is one step down the (target, created_at) index (migration 0015), per target pending.
_LAST = (select(func.max(DELIVERIES.c.created_at)).where(DELIVERIES.c.target == MATCHES.c.target)
         .scalar_subquery())
_PENDING = (
    select(MATCHES.c.target, func.count().label("count"),
           func.max(STORIES.c.impact).label("impact"), _LAST.label("last"))
    .join(STORIES, STORIES.c.id == MATCHES.c.story_id)
    .where(MATCHES.c.delivery_id.is_(None))
    .group_by(MATCHES.c.target)
    .order_by(func.min(MATCHES.c.id))  # targets in the order their first item came
)
# The same without the highest impact, which only quiet hours read: the join to `stories`
# for every pending match was two thirds of the statement (3 against 9 ms at ~9,000
# pending), and an ingest of held batches runs it for every chunk.
_COUNTED = (
    select(MATCHES.c.target, func.count().label("count"), null().label("impact"),
           _LAST.label("last"))
    .where(MATCHES.c.delivery_id.is_(None))
    .group_by(MATCHES.c.target)
    .order_by(func.min(MATCHES.c.id))
)
_ITEMS = (
    select(MATCHES.c.id, MATCHES.c.target, MATCHES.c.story_id, MATCHES.c.reason,
           STORIES.c.impact)
    .join(STORIES, STORIES.c.id == MATCHES.c.story_id)
    .where(MATCHES.c.delivery_id.is_(None),
           MATCHES.c.target.in_(bindparam("targets", expanding=True)))
    .order_by(MATCHES.c.id)
)
_IN = 500  # values per IN (…): under every driver's limit on bound parameters


_UNPLANNED = select(MATCHES.c.id).where(MATCHES.c.delivery_id.is_(None)).limit(1)


def has_unplanned(db: Connection) -> bool:
    """Whether any match waits for a delivery row (one step down the delivery_id index): the
    once-a-second flush asks this before it reads every target."""
    return db.execute(_UNPLANNED).first() is not None


def _items(db: Connection, keys: Sequence[str]) -> dict[str, list[Any]]:
    """These targets' pending matches, each target's in the order they were made."""
    found: dict[str, list[Any]] = {key: [] for key in keys}
    for start in range(0, len(keys), _IN):
        for row in db.execute(_ITEMS, {"targets": list(keys[start : start + _IN])}):
            found[row.target].append(row)
    return found


def _enqueue(db: Connection, groups: Sequence[tuple[Target, list[Any], str]], now: datetime
             ) -> list[Planned]:
    """One row per target for its `items`: an `alert` for one, a `batch` for several.

    Dedupe keys name the story (alert) or the first and last match (batch). A key is only a
    uniqueness guard (planning holds PLAN_LOCK, and a planned match is never planned again),
    so rows stored before migration 0009 keep their `digest:` keys; a key already there plans
    no row, as `add` does.
    """
    rows: list[dict[str, Any]] = []
    planned: list[Planned] = []
    for target, items, why in groups:
        if len(items) == 1:
            kind, dedupe = "alert", f"alert:{target.key}:{items[0].story_id}"
            reason = items[0].reason
        else:
            kind, dedupe = "batch", f"batch:{target.key}:{items[0].id}-{items[-1].id}"
            # Each match keeps its own reason; the row names the first few and counts the rest.
            listed = "; ".join(f"{item.story_id}: {item.reason}" for item in items[:10])
            more = f"; and {len(items) - 10} more" if len(items) > 10 else ""
            reason = f"{len(items)} action items ({why}): {listed}{more}"
        rows.append({"dedupe_key": dedupe, "transport": target.transport, "target": target.key,
                     "kind": kind, "reason": reason, "status": "pending", "attempts": 0,
                     "not_before": now, "created_at": now})
        planned.append(Planned(target.key, kind, tuple(item.story_id for item in items), reason))
    keys = [row["dedupe_key"] for row in rows]
    made = bulk.insert_new(db, DELIVERIES, rows, "dedupe_key")  # through the driver
    links: list[tuple[int, int]] = []
    for (target, items, _), key in zip(groups, keys, strict=True):
        delivery_id = made.get(key)  # None: the key was there, the items stay unplanned
        if delivery_id is None:
            continue
        links += [(delivery_id, item.id) for item in items]
        # its escalations, if the route has any, in this transaction
        escalations.plan_escalations(db, target, delivery_id, items, now)
    if links:
        mark = "?" if db.dialect.paramstyle == "qmark" else "%s"
        db.exec_driver_sql(f"UPDATE matches SET delivery_id = {mark} WHERE id = {mark}", links)
    return planned



def add(db: Connection, now: datetime, *, dedupe: str, transport: str, target: str, kind: str,
        reason: str, due: datetime | None = None, **extra: Any) -> int | None:
    """Add a pending delivery row, due now (or at `due`), unless one with its dedupe key
    exists.

    Return the new row's id, or None when the key was already there. The unique constraint
    on `dedupe_key` backs this up when two processes race.
    """
    if db.scalar(select(DELIVERIES.c.id).where(DELIVERIES.c.dedupe_key == dedupe)):
        return None
    result = db.execute(DELIVERIES.insert().values(
        dedupe_key=dedupe, transport=transport, target=target, kind=kind, reason=reason,
        status="pending", attempts=0, not_before=now if due is None else due, created_at=now,
        **extra,
    ))
    return int(result.inserted_primary_key[0])  # type: ignore[index]



def add_many(db: Connection, now: datetime, rows: Sequence[dict[str, Any]]) -> set[str]:
    """`add` for many rows at once (a chunk of daily digests); return the keys added.

    Rows are dicts of `add`'s keyword arguments; those whose dedupe key exists are skipped.
    """
    keys = [row["dedupe"] for row in rows]
    existing: set[str] = set()
    for start in range(0, len(keys), 500):
        existing.update(db.scalars(select(DELIVERIES.c.dedupe_key).where(
            DELIVERIES.c.dedupe_key.in_(keys[start : start + 500]))))
    fresh = [row for row in rows if row["dedupe"] not in existing]
    if fresh:
        db.execute(DELIVERIES.insert(), [
            {**{k: v for k, v in row.items() if k != "dedupe"}, "dedupe_key": row["dedupe"],
             "status": "pending", "attempts": 0, "not_before": now, "created_at": now}
            for row in fresh
        ])
    return {row["dedupe"] for row in fresh}



def enqueue_update(db: Connection, parent: Any, story_id: str, version: str,
                   details: dict[str, Any], now: datetime) -> bool:
    """Queue the edit of one posted message for one new version of a story (once, by key)."""
    impact, sources = details["impact"], details["sources"]
    reason = (f"{story_id} re-scored: impact {impact[0]:g} → {impact[1]:g}, "
              f"sources {sources[0]} → {sources[1]}")
    return add(db, now, dedupe=f"update:{parent.id}:{story_id}:{version}", transport="slack",
               target=parent.target, kind="update", reason=reason, parent_id=parent.id,
               details={**details, "story_id": story_id}) is not None



def enqueue_facts(db: Connection, channel: str, thread_ts: str, story_id: str, user: str,
                  now: datetime) -> bool:
    """Queue the key facts of a story into an alert's thread, once; False if already queued."""
    return add(db, now, dedupe=f"facts:{channel}:{thread_ts}:{story_id}", transport="slack",
               target=f"slack:{channel}", kind="facts",
               reason=f"key facts of {story_id} asked for by {user}",
               details={"story_id": story_id, "thread_ts": thread_ts}) is not None



def enqueue_unfurl(db: Connection, event_id: str, channel: str, links: dict[str, str],
                   where: dict[str, str], user: str, now: datetime) -> bool:
    """Queue the previews of the story links one Slack message shared (`links`: URL → story
    id; `where`: the message's `ts`, or a draft's `unfurl_id` and `source`), once per Slack
    event: a retry of the event (or its delivery to another replica) finds the key taken."""
    return add(db, now, dedupe=f"unfurl:{event_id}", transport="slack", target=f"slack:{channel}",
               kind="unfurl", reason=f"{len(links)} story link(s) shared by {user}",
               details={**where, "links": links}) is not None
