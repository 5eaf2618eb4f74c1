"""The story archive: stores each newer version of a story, and every rejection.

`save` is where the version rule (docs/stories.md) is applied: a newer payload replaces the
stored story and is kept in its history; an equal or older one is ignored, so re-ingesting a
file is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, literal, select, text, update

from bot.db import bulk
from bot.db.schema import COUNTERS, DELIVERIES, MATCHES, REJECTIONS, STORIES, VERSIONS
from bot.rules.gate import Corroboration, Figures, Thresholds, corroborate, is_newer, too_old
from bot.stories.model import Story
from bot.stories.parsing import Rejection


@dataclass(frozen=True)
class Saved:
    """A story version that was stored because it is new or newer than what we had."""

    story: Story
    corroboration: Corroboration
    before: Figures | None  # the replaced version's figures; None for a new story

    @property
    def replaced(self) -> bool:
        return self.before is not None


def _latest_per_id(stories: Sequence[Story]) -> list[Story]:
    """Keep only the newest payload of each id within one batch, in first-seen order."""
    newest: dict[str, Story] = {}
    for story in stories:
        held = newest.get(story.id)
        if held is None or is_newer(story, held.version, held.scored_at):
            newest[story.id] = story
    return list(newest.values())


def search_text(story: Story) -> str:
    """What full-text search reads besides the title: takeaways, facts, source headlines."""
    headlines = [s.title for s in story.sources or () if s.title]
    return "\n".join([*story.key_takeaways, *story.key_facts, *headlines])


def _columns(story: Story, corroboration: Corroboration, limits: Thresholds) -> dict[str, Any]:
    return {
        "version": story.version,
        "scored_at": story.scored_at,
        "impact": float(story.impact),
        "corroboration": corroboration.count,
        "qualifies": story.impact >= limits.min_impact
        and corroboration.count >= limits.min_sources,
        "payload": story.model_dump_json(exclude_none=True),
    }


def save(
    db: Connection, stories: Sequence[Story], limits: Thresholds, max_age: timedelta,
    now: datetime,
) -> list[Saved]:
    """Store every story that is new or newer; return what was stored.

    A story's `qualified_at` is set when a qualifying version that is fresh enough to alert
    arrives, kept while later versions still qualify, and cleared when one does not; its
    `qualified_seq` with it, numbered in storing order (what daily digests follow).
    """
    candidates = _latest_per_id(stories)
    known = _stored(db, [story.id for story in candidates])
    saved: list[Saved] = []
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for story in candidates:
        stored = known.get(story.id)
        if stored is not None and not is_newer(story, stored.version, stored.scored_at):
            continue
        corroboration = corroborate(story)
        row = _row(story, corroboration, stored, limits, max_age, now)
        (updates if stored else inserts).append(row)
        before = (Figures(stored.impact, stored.corroboration, stored.qualifies)
                  if stored is not None else None)
        saved.append(Saved(story, corroboration, before))
    _number([row for row in (*inserts, *updates)
             if row["qualified_at"] is not None and row["qualified_seq"] is None], db)
    if inserts:
        bulk.insert(db, STORIES, inserts)  # through the driver: bot/db/bulk.py
        if db.dialect.name == "sqlite":
            _index_for_search(db, len(inserts))
    if updates:
        _keep_as_history(db, [row["id"] for row in updates])
        db.execute(
            update(STORIES).where(STORIES.c.id == bindparam("b_id")),
            [{("b_id" if key == "id" else key): value for key, value in row.items()}
             for row in updates],
        )
    return saved


def _index_for_search(db: Connection, inserted: int) -> None:
    """Add the `inserted` stories just inserted to SQLite's full-text index, in one statement
    (migration 0014: a per-row trigger cost five times as much). This transaction holds the
    write lock and SQLite gives each new row the highest rowid plus one, so they are the top
    `inserted` rowids; a replaced version is kept in step by the update trigger. PostgreSQL
    indexes an expression instead."""
    db.execute(_INDEX_NEWEST, {"inserted": inserted})


# Built once, and the highest rowid read inside it: one statement on every ingest's path.
_INDEX_NEWEST = text(
    "INSERT INTO stories_fts(rowid, title, search_text) "
    "SELECT rowid, title, search_text FROM stories "
    "WHERE rowid > (SELECT max(rowid) FROM stories) - :inserted")


def _stored(db: Connection, ids: list[str]) -> dict[str, Any]:
    """What is stored of these stories: figures, version and action-item state, by id."""
    known: dict[str, Any] = {}
    for chunk in range(0, len(ids), 500):
        rows = db.execute(_STORED, {"ids": ids[chunk : chunk + 500]})
        known.update({row.id: row for row in rows})
    return known


# Built once, with the ids bound as one expanding parameter: a statement built per chunk
# coerced each of its 500 ids as a literal (~10,000 Python calls per 10,000 stories).
_STORED = select(STORIES.c.id, STORIES.c.version, STORIES.c.scored_at, STORIES.c.impact,
                 STORIES.c.corroboration, STORIES.c.qualifies, STORIES.c.qualified_at,
                 STORIES.c.qualified_seq).where(STORIES.c.id.in_(bindparam("ids", expanding=True)))


def _row(story: Story, corroboration: Corroboration, stored: Any, limits: Thresholds,
         max_age: timedelta, now: datetime) -> dict[str, Any]:
    """The `stories` row for a new or newer version; an action item keeps when it became one."""
    columns = _columns(story, corroboration, limits)
    qualified_at, seq = None, None
    if columns["qualifies"]:
        kept = (stored.qualified_at, stored.qualified_seq) if stored else (None, None)
        fresh = too_old(story.scored_at, now, max_age) is None
        qualified_at = kept[0] or (now if fresh else None)
        seq = kept[1] if kept[0] is not None else None
    return {"id": story.id, **columns, "flag": corroboration.flag, "title": story.title,
            "url": story.url, "search_text": search_text(story), "updated_at": now,
            "qualified_at": qualified_at, "qualified_seq": seq}


def _number(rows: list[dict[str, Any]], db: Connection) -> None:
    """Number the stories that became action items just now, in the order given."""
    if rows:
        first = take_numbers(db, QUALIFIED, len(rows))
        for offset, row in enumerate(rows):
            row["qualified_seq"] = first + offset


QUALIFIED = "qualified"  # the counter that numbers action items in storing order


# Built once: every ingest that makes a new action item runs it (a push of one story too).
_TAKE_NUMBERS = (update(COUNTERS).where(COUNTERS.c.name == bindparam("counter"))
                 .values(value=COUNTERS.c.value + bindparam("count", type_=COUNTERS.c.value.type))
                 .returning(COUNTERS.c.value))


def take_numbers(db: Connection, counter: str, count: int) -> int:
    """Reserve `count` numbers from `counter`; return the first.

    The counter's row stays locked until this transaction commits, so a transaction that takes
    numbers after this one waits for it: numbers become visible in the order they were given,
    and a reader that sees number N sees every number below it.
    """
    top = db.scalar(_TAKE_NUMBERS, {"counter": counter, "count": count})
    if top is None:  # a database whose migration did not create the row
        db.execute(COUNTERS.insert().values(name=counter, value=count))
        top = count
    return int(top) - count + 1


def last_number(db: Connection, counter: str) -> int:
    """The highest number `counter` has given (0 before the first)."""
    return int(db.scalar(select(COUNTERS.c.value).where(COUNTERS.c.name == counter)) or 0)


_HISTORY_COLUMNS = ("version", "scored_at", "impact", "corroboration", "qualifies", "payload")


def _keep_as_history(db: Connection, story_ids: list[str]) -> None:
    """Copy the versions about to be replaced into story_versions, inside the database.

    The current version lives in `stories`; `story_versions` holds the earlier ones, so a new
    story is written once, and each replaced version is kept exactly as it was received.
    """
    columns = [STORIES.c[name] for name in _HISTORY_COLUMNS]
    for start in range(0, len(story_ids), 500):
        db.execute(VERSIONS.insert().from_select(
            ["story_id", *_HISTORY_COLUMNS, "received_at"],
            select(STORIES.c.id, *columns, STORIES.c.updated_at)
            .where(STORIES.c.id.in_(story_ids[start : start + 500])),
        ))


def record_rejections(
    db: Connection, rejections: Sequence[Rejection], origin: str, now: datetime
) -> None:
    if rejections:
        db.execute(
            REJECTIONS.insert(),
            [
                {"received_at": now, "origin": origin, "position": r.position,
                 "story_id": r.story_id, "field": r.field, "reason": r.reason}
                for r in rejections
            ],
        )


def load(db: Connection, story_ids: Sequence[str]) -> dict[str, Story]:
    """Load the current version of each story by id."""
    rows = db.execute(_LOAD, {"ids": list(story_ids)})
    return {row.id: Story.model_validate_json(row.payload) for row in rows}


def history(db: Connection, story_id: str) -> list[Any]:
    """Every version of a story as received, oldest first: the earlier ones, then the current;
    their figures, not their payloads (what `/story` and `alertbot story` show)."""
    return list(db.execute(_HISTORY, {"story_id": story_id}))


# The statements `/story` runs on every answer, built once (as search.py's, and for its reason).
# The history leaves the payloads out: nothing shows them, and `/story` has read the current one.
_SHOWN = ("version", "scored_at", "impact", "corroboration", "qualifies")
_LOAD = select(STORIES.c.id, STORIES.c.payload).where(
    STORIES.c.id.in_(bindparam("ids", expanding=True)))
_HISTORY = select(*(VERSIONS.c[name] for name in _SHOWN), VERSIONS.c.received_at,
                  VERSIONS.c.id.label("n")).where(
    VERSIONS.c.story_id == bindparam("story_id")).union_all(
    select(*(STORIES.c[name] for name in _SHOWN),
           STORIES.c.updated_at.label("received_at"), literal(2**62).label("n"))
    .where(STORIES.c.id == bindparam("story_id"))).order_by("n")
_ALERTED = (select(DELIVERIES.c.target, DELIVERIES.c.status, DELIVERIES.c.sent_at)
            .join(MATCHES, MATCHES.c.delivery_id == DELIVERIES.c.id)
            .where(MATCHES.c.story_id == bindparam("story_id")).order_by(DELIVERIES.c.id))


def rejections(db: Connection, limit: int = 1000) -> list[Any]:
    rows = db.execute(
        select(REJECTIONS).order_by(REJECTIONS.c.id.desc()).limit(limit)
    )
    return list(rows)


def alerted_where(db: Connection, story_id: str) -> list[Any]:
    """Where and when a story was sent: one row per delivery that carried it."""
    return list(db.execute(_ALERTED, {"story_id": story_id}))


def action_items(db: Connection, since: datetime, words: Sequence[str] = (), limit: int = 15
                 ) -> tuple[list[Story], int]:
    """Action items scored since `since` whose title has every word, newest first; and how many."""
    condition = and_(STORIES.c.qualifies.is_(True), STORIES.c.scored_at >= since,
                     *(func.lower(STORIES.c.title).like(f"%{w.lower()}%") for w in words))
    total = db.scalar(select(func.count()).select_from(STORIES).where(condition)) or 0
    rows = db.execute(select(STORIES.c.payload).where(condition)
                      .order_by(STORIES.c.scored_at.desc()).limit(limit))
    return [Story.model_validate_json(row.payload) for row in rows], total
