"""Action items as stored: read a story's state, apply a press, list the history.

A press is applied in one transaction: its audit row first, under a unique key, so a press
delivered twice (a Slack retry, a double click, two replicas) finds its key taken and changes
nothing; then the decision (`bot.rules.claims.decide`) over the state as read, written back with
a compare-and-set on `version`. Two different presses racing on one story both read the same
version: one update wins, the other re-reads and decides again over what won.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.db.schema import ACTION_EVENTS, ACTION_ITEMS, STORIES
from bot.metrics import Tally
from bot.rules.claims import Item, Outcome, Reason, Request, State, decide

# A compare-and-set lost this many times in a row means something is wrong, not busy.
ATTEMPTS = 5


@dataclass(frozen=True)
class Applied:
    """What a press did: the decision's outcome, and whether it was a repeat of one recorded."""

    outcome: Outcome
    repeat: bool = False


def press_key(action_ts: str, user: str, verb: str, story_id: str) -> str:
    """One press, however often delivered: Slack sends the same `action_ts` on a retry."""
    return f"{action_ts}:{user}:{verb}:{story_id}"


def _item(row: Any) -> Item:
    return Item(State(row.state), row.by, row.at, row.note,
                Reason(row.reason) if row.reason else None, row.snoozed_until, row.by_name)


def read(db: Connection, story_id: str) -> tuple[Item, int]:
    """The story's item and its version (0: never acted on, no row yet)."""
    row = db.execute(select(ACTION_ITEMS).where(ACTION_ITEMS.c.story_id == story_id)).first()
    return (Item(), 0) if row is None else (_item(row), row.version)


def _values(item: Item) -> dict[str, Any]:
    return {"state": item.state.value, "by": item.by, "at": item.at, "note": item.note,
            "reason": item.reason.value if item.reason else None,
            "snoozed_until": item.snoozed_until, "by_name": item.by_name}


def _insert(db: Connection, table: Any) -> Any:
    return (postgresql.insert if db.dialect.name == "postgresql" else sqlite.insert)(table)


def _write(db: Connection, story_id: str, item: Item, version: int) -> bool:
    """Compare-and-set: write `item` only if the stored version is still `version`."""
    if version == 0:
        added = db.execute(_insert(db, ACTION_ITEMS).values(
            story_id=story_id, version=1, **_values(item)).on_conflict_do_nothing()
            .returning(ACTION_ITEMS.c.story_id))
        return added.first() is not None
    done = db.execute(update(ACTION_ITEMS).where(
        ACTION_ITEMS.c.story_id == story_id, ACTION_ITEMS.c.version == version,
    ).values(version=version + 1, **_values(item)))
    return done.rowcount == 1


def _record(db: Connection, key: str, story_id: str, request: Request, now: datetime) -> bool:
    """The audit row, claimed by its key before anything changes; False if already there."""
    done = db.execute(_insert(db, ACTION_EVENTS).values(
        press_key=key, story_id=story_id, user=request.user, name=request.name,
        action=request.verb.value, at=now,
        note=request.note, reason=request.reason.value if request.reason else None,
        outcome="pending", applied=False).on_conflict_do_nothing(
        index_elements=[ACTION_EVENTS.c.press_key]).returning(ACTION_EVENTS.c.id))
    # RETURNING, not rowcount: with an autoincrement key the driver's rowcount is not reliable.
    return done.first() is not None


def apply(db: Connection, story_id: str, request: Request, now: datetime, key: str,
          allowed: Collection[str] | None = None) -> Applied:
    """Decide and store one press, once; call inside a transaction (`Database.write`)."""
    if not _record(db, key, story_id, request, now):
        item, _ = read(db, story_id)
        return Applied(Outcome(False, item, "repeat", item.by), repeat=True)
    for _ in range(ATTEMPTS):
        item, version = read(db, story_id)
        outcome = decide(item, request, now, allowed)
        if not outcome.applied or _write(db, story_id, outcome.item, version):
            db.execute(update(ACTION_EVENTS).where(ACTION_EVENTS.c.press_key == key).values(
                outcome=outcome.code, applied=outcome.applied))
            return Applied(outcome)
    raise RuntimeError(f"action item {story_id}: state changed under {ATTEMPTS} tries in a row")


def history(db: Connection, story_id: str) -> list[Any]:
    """Every press on the story, oldest first, for /story and `alertbot story`."""
    return list(db.execute(_HISTORY, {"story_id": story_id}))


# Built once: /story runs it on every answer (see search.py's statements).
_HISTORY = (select(ACTION_EVENTS).where(ACTION_EVENTS.c.story_id == bindparam("story_id"))
            .order_by(ACTION_EVENTS.c.at, ACTION_EVENTS.c.id))


# The presses the scorers learn from: the desk's verdicts on a story.
VERDICTS = ("dismiss", "done")


def _topics(payload: str | None) -> list[str]:
    return list(json.loads(payload).get("topics", [])) if payload else []


def verdicts(db: Connection, since: datetime | None = None) -> list[dict[str, Any]]:
    """Every applied dismissal and done, oldest first, with the story's figures and topics,
    for `alertbot feedback`. A story since pruned keeps its verdict, with no figures."""
    events = ACTION_EVENTS.outerjoin(STORIES, STORIES.c.id == ACTION_EVENTS.c.story_id)
    query = (select(ACTION_EVENTS.c.story_id, STORIES.c.impact, STORIES.c.corroboration,
                    STORIES.c.payload, ACTION_EVENTS.c.action, ACTION_EVENTS.c.reason,
                    ACTION_EVENTS.c.note, ACTION_EVENTS.c.user, ACTION_EVENTS.c.at)
             .select_from(events)
             .where(ACTION_EVENTS.c.applied.is_(True), ACTION_EVENTS.c.action.in_(VERDICTS))
             .order_by(ACTION_EVENTS.c.at, ACTION_EVENTS.c.id))
    if since is not None:
        query = query.where(ACTION_EVENTS.c.at >= since)
    return [{"story_id": row.story_id, "impact": row.impact, "sources": row.corroboration,
             "topics": _topics(row.payload), "verdict": row.action, "reason": row.reason,
             "note": row.note, "by": row.user, "at": row.at} for row in db.execute(query)]


def items(db: Connection, state: State, limit: int = 500, by: str | None = None,
          since: datetime | None = None) -> list[dict[str, Any]]:
    """Action items in one state (and owner, with `by`; changed or qualified at or after
    `since`), newest change first, for the desk's dashboard, `/actionitems` and the Home tab.
    Open counts every action item never acted on, by when it became one."""
    joined = STORIES.outerjoin(ACTION_ITEMS, ACTION_ITEMS.c.story_id == STORIES.c.id)
    query = select(STORIES.c.id, STORIES.c.title, STORIES.c.url, STORIES.c.impact,
                   STORIES.c.corroboration, ACTION_ITEMS).select_from(joined)
    if state is State.OPEN:
        query = query.where(STORIES.c.qualified_at.is_not(None), (ACTION_ITEMS.c.state.is_(None))
                            | (ACTION_ITEMS.c.state == State.OPEN.value))
    else:
        query = query.where(ACTION_ITEMS.c.state == state.value)
    if by is not None:
        query = query.where(ACTION_ITEMS.c.by == by)
    changed = func.coalesce(ACTION_ITEMS.c.at, STORIES.c.qualified_at)
    if since is not None:
        query = query.where(changed >= since)
    query = query.order_by(changed.desc(), STORIES.c.id).limit(limit)
    return [{"story_id": row.id, "title": row.title, "url": row.url, "impact": row.impact,
             "sources": row.corroboration, "state": row.state or State.OPEN.value,
             "by": row.by, "by_name": row.by_name, "at": row.at, "snoozed_until": row.snoozed_until,
             "note": row.note, "reason": row.reason} for row in db.execute(query)]


def tally(db: Connection) -> Tally:
    """What `/metrics` shows of the action items, counted now: the open ones nobody has acted
    on by impact band, and every applied verdict by reason. Two grouped counts."""
    joined = STORIES.outerjoin(ACTION_ITEMS, ACTION_ITEMS.c.story_id == STORIES.c.id)
    open_rows = db.execute(
        select(STORIES.c.impact, func.count()).select_from(joined)
        .where(STORIES.c.qualified_at.is_not(None), (ACTION_ITEMS.c.state.is_(None))
               | (ACTION_ITEMS.c.state == State.OPEN.value))
        .group_by(STORIES.c.impact))
    # Banded here, not in SQL: PostgreSQL's CAST rounds (8.5 → 9) where SQLite's truncates,
    # and FLOOR is not in every SQLite. Impacts are few distinct values.
    bands: dict[int, int] = {}
    for impact, count in open_rows:
        band = math.floor(impact)
        bands[band] = bands.get(band, 0) + int(count)
    verdict_rows = db.execute(
        select(ACTION_EVENTS.c.action, ACTION_EVENTS.c.reason, func.count())
        .where(ACTION_EVENTS.c.applied.is_(True), ACTION_EVENTS.c.action.in_(VERDICTS))
        .group_by(ACTION_EVENTS.c.action, ACTION_EVENTS.c.reason))
    return Tally(bands, {(action, reason or ""): int(n) for action, reason, n in verdict_rows})
