"""Daily digests: one outbox row per subscriber per local date, planned when due.

A subscriber's row names the action items stored since their previous digest (24 h back on the
first), best first. "Since" follows the order stories were stored in, not the clock: each
action item carries a number from one counter (`archive.take_numbers`), and a reader keeps the
highest number their last digest covered, so a story stored before a digest is planned is in
it and no story is in two (docs/decisions.md, "Daily digest windows").

The row's dedupe key is `daily:<address>:<local date>`, so a restart, a second replica or
`digest send --now` can never plan a second one for that date. Subscribers whose digest is due
are found by `next_digest_at` (indexed), claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL,
and moved on to their next local date in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, update

from bot import outbox
from bot.db import DIGEST_LOCK, take_turns
from bot.db.schema import DELIVERIES, MATCHES, STORIES, SUBSCRIBERS
from bot.readers.subscribers import DAILY, Subscriber, from_row
from bot.rules.digest_clock import digest_time, due, local_date
from bot.rules.gate import Corroboration, corroborate
from bot.rules.targets import email_target, match
from bot.settings import DeskConfig
from bot.stories import archive
from bot.stories.model import Story

CHUNK = 500  # subscribers per transaction
FIRST_LOOKBACK = timedelta(hours=24)  # at most 24 h back on a reader's first digest


@dataclass(frozen=True)
class Candidate:
    """An action item that may go in a digest."""

    story: Story
    corroboration: Corroboration
    qualified_at: datetime
    seq: int  # its number in storing order (`stories.qualified_seq`)


@dataclass(frozen=True)
class Window:
    """Which action items one digest covers: numbers in (after, upto], or, on a reader's first
    digest (after None), those that became action items since `since` up to `upto`."""

    after: int | None
    upto: int
    since: datetime  # the previous digest's planning time, or 24 h back: what the email says

    def holds(self, candidate: Candidate) -> bool:
        if candidate.seq > self.upto:
            return False
        if self.after is None:
            return candidate.qualified_at > self.since
        return candidate.seq > self.after


def window(subscriber: Subscriber, upto: int, now: datetime) -> Window:
    """The window of `subscriber`'s digest planned at `now`, when the counter stands at `upto`."""
    return Window(subscriber.digest_seq, upto, subscriber.digest_since or now - FIRST_LOOKBACK)


@dataclass(frozen=True)
class Contents:
    """What one subscriber's digest holds, best first, and which were already emailed to them."""

    day: date
    window: Window
    timezone: str
    stories: list[Candidate]
    alerted: frozenset[str]

    @property
    def since(self) -> datetime:
        return self.window.since

    def details(self) -> dict[str, Any]:
        """What the outbox row keeps, for rendering and for the record."""
        return {"date": self.day.isoformat(), "since": self.since.isoformat(),
                "upto": self.window.upto, "timezone": self.timezone,
                "stories": [c.story.id for c in self.stories], "alerted": sorted(self.alerted)}


@dataclass
class Tally:
    planned: int = 0
    empty: int = 0  # nothing to say and `send_empty_digest` off: no email
    already: int = 0  # that date's digest exists (planned before, elsewhere, or by --now)
    missed: int = 0  # the digest hour passed while alertbot was down all that local day
    paused: int = 0  # the reader paused email past today

    def merge(self, other: Tally) -> None:
        self.planned += other.planned
        self.empty += other.empty
        self.already += other.already
        self.missed += other.missed
        self.paused += other.paused


def candidates(db: Connection, windows: Sequence[Window], desk: DeskConfig) -> list[Candidate]:
    """Action items inside any of `windows`, as stored now, that pass the desk's rule and were
    fresh when they arrived; best first: highest impact, then most sources, then newest."""
    if not windows:
        return []
    upto = max(w.upto for w in windows)
    marks = [w.after for w in windows if w.after is not None]
    firsts = [w.since for w in windows if w.after is None]
    inside = []
    if marks:
        inside.append(STORIES.c.qualified_seq > min(marks))
    if firsts:
        inside.append(STORIES.c.qualified_at > min(firsts))
    rows = db.execute(
        select(STORIES.c.payload, STORIES.c.qualified_at, STORIES.c.qualified_seq)
        .where(STORIES.c.qualifies.is_(True), STORIES.c.qualified_seq <= upto, or_(*inside))
    )
    anyone = email_target("", (), desk)  # the rule without a reader's topics
    found = []
    for row in rows:
        story = Story.model_validate_json(row.payload)
        corroboration = corroborate(story)
        if match(story, corroboration, anyone, row.qualified_at, desk.rules.max_alert_age).send:
            found.append(Candidate(story, corroboration, row.qualified_at, row.qualified_seq))
    return sorted(found, key=lambda c: (-c.story.impact, -c.corroboration.count, -c.seq))


def select_for(topics: Iterable[str], found: Iterable[Candidate], covered: Window,
               min_impact: float | None = None) -> list[Candidate]:
    """A reader's items, in `found`'s order: in their window, if they chose topics in one, and
    at or above the minimum impact they chose (None: the desk's rule alone).

    Topics match as they do for instant alerts (`routes.match`): any of the reader's topics.
    """
    wanted = frozenset(topics)
    return [c for c in found if covered.holds(c) and (not wanted or wanted & c.story.topic_set)
            and (min_impact is None or c.story.impact >= min_impact)]


def _alerted(db: Connection, addresses: Sequence[str], story_ids: Sequence[str]
             ) -> set[tuple[str, str]]:
    """(address, story id) pairs already sent to these subscribers as instant emails."""
    if not addresses or not story_ids:
        return set()
    rows = db.execute(
        select(MATCHES.c.target, MATCHES.c.story_id)
        .join(DELIVERIES, DELIVERIES.c.id == MATCHES.c.delivery_id)
        .where(MATCHES.c.target.in_([f"email:{a}" for a in addresses]),
               MATCHES.c.story_id.in_(list(story_ids)), DELIVERIES.c.status == "sent")
    )
    return {(row.target.partition(":")[2], row.story_id) for row in rows}


Chosen = dict[tuple[tuple[str, ...], Window, float | None], list[Candidate]]


def contents(db: Connection, subscriber: Subscriber, desk: DeskConfig, now: datetime,
             found: Sequence[Candidate] | None = None,
             alerted: set[tuple[str, str]] | None = None, chosen: Chosen | None = None,
             upto: int | None = None) -> Contents:
    """What `subscriber`'s digest would hold if it went now (read only: `preview` uses it).

    Planning passes what it read once for many readers: where the counter stood (`upto`), the
    candidates, the instant alerts already sent, and `chosen`, where readers with the same
    topics and window share a list.
    """
    if upto is None:
        upto = archive.last_number(db, archive.QUALIFIED)
    covered = window(subscriber, upto, now)
    if found is None:
        found = candidates(db, [covered], desk)
    key = (subscriber.topics, covered, subscriber.min_impact)
    picked = chosen.get(key) if chosen is not None else None
    if picked is None:
        picked = select_for(subscriber.topics, found, covered, subscriber.min_impact)
        if chosen is not None:
            chosen[key] = picked
    if alerted is None:
        alerted = (_alerted(db, [subscriber.email], [c.story.id for c in picked])
                   if subscriber.mode == "both" else set())
    marked = (frozenset(c.story.id for c in picked if (subscriber.email, c.story.id) in alerted)
              if subscriber.mode == "both" else frozenset())
    return Contents(local_date(now, subscriber.timezone), covered, subscriber.timezone, picked,
                    marked)


def plan_chunk(db: Connection, desk: DeskConfig, now: datetime, force: bool = False,
               after_id: int = 0) -> tuple[Tally, int | None]:
    """Plan the digests of up to CHUNK due subscribers; return the tally and the last id seen.

    `force` (digest send --now): every daily subscriber's digest for their local today, due or
    not, walking subscribers by id from `after_id`. The last id is None when none were left.
    """
    # One planner at a time. On SQLite this takes the write lock before reading: a planner that
    # read readers' marks before another committed would cover the same stories again.
    take_turns(db, DIGEST_LOCK)
    rows = _due_rows(db, now, force, after_id)
    if not rows:
        return Tally(), None
    # Read where the counter stands before reading stories: every number up to it is committed
    # (see archive.take_numbers), so nothing stored before this point can fall outside.
    upto = archive.last_number(db, archive.QUALIFIED)
    readers = [from_row(row) for row in rows]
    found = candidates(db, [window(r, upto, now) for r in readers], desk)
    both = [r.email for r in readers if r.mode == "both"]
    chunk = _Chunk(now, upto, found, _alerted(db, both, sorted({c.story.id for c in found})))
    for row, reader in zip(rows, readers, strict=True):
        _plan_one(db, desk, chunk, reader, force, row.id)
    _store(db, chunk)
    return chunk.tally, rows[-1].id


def _due_rows(db: Connection, now: datetime, force: bool, after_id: int) -> list[Any]:
    query = select(SUBSCRIBERS).where(SUBSCRIBERS.c.mode.in_(DAILY)).order_by(SUBSCRIBERS.c.id)
    if force:
        query = query.where(SUBSCRIBERS.c.id > after_id)
    else:
        query = query.where(SUBSCRIBERS.c.next_digest_at <= now)
    return list(db.execute(query.limit(CHUNK).with_for_update(skip_locked=True)))


@dataclass
class _Chunk:
    """One chunk's planning: what was read once for all its readers, and what it decided."""

    now: datetime
    upto: int
    found: list[Candidate]
    alerted: set[tuple[str, str]]
    chosen: Chosen = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    moves: list[dict[str, Any]] = field(default_factory=list)  # each reader's next state
    wanted: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    @property
    def covered(self) -> dict[str, Any]:
        """A reader's state once this window is done: the next one starts above `upto`."""
        return {"digest_since": self.now, "digest_seq": self.upto}


def _plan_one(db: Connection, desk: DeskConfig, chunk: _Chunk, reader: Subscriber,
              force: bool, row_id: int) -> None:
    """Decide one reader's digest: missed, empty, or a row to add (and where they move)."""
    now = chunk.now
    today = local_date(now, reader.timezone)
    if force:
        tomorrow = digest_time(today + timedelta(days=1), reader.timezone, reader.digest_hour)
        day: date | None = today
        next_at, why = tomorrow, f"daily digest for {today} (sent early: digest send --now)"
    else:
        scheduled = reader.next_digest_at or now  # set for every daily reader
        day, next_at, why = due(now, reader.timezone, reader.digest_hour, scheduled)
    move = {"b_id": row_id, "next_digest_at": next_at, "digest_since": reader.digest_since,
            "digest_seq": reader.digest_seq}
    chunk.moves.append(move)
    if day is None:
        chunk.tally.missed += 1
        return
    if reader.paused(now):
        # Paused: no digest, and the window moves on, so the first digest after the pause
        # covers one day, not the weeks away (docs/decisions.md).
        chunk.tally.paused += 1
        move.update(chunk.covered)
        return
    digest = contents(db, reader, desk, now, chunk.found, chunk.alerted, chunk.chosen,
                      chunk.upto)
    if not digest.stories and not desk.email.send_empty_digest:
        chunk.tally.empty += 1
        move.update(chunk.covered)  # nothing happened in that window
        return
    reason = f"{why}: {len(digest.stories)} action items since {digest.since:%Y-%m-%d %H:%M} UTC"
    chunk.wanted.append(({"dedupe": f"daily:{reader.email}:{day.isoformat()}",
                          "transport": "email", "target": f"email:{reader.email}",
                          "kind": "daily", "reason": reason, "details": digest.details()}, move))


def _store(db: Connection, chunk: _Chunk) -> None:
    """Add the chunk's rows (a date's digest already there is not added twice) and move every
    reader on; a reader whose row existed keeps their window."""
    added = outbox.add_many(db, chunk.now, [delivery for delivery, _ in chunk.wanted])
    for delivery, move in chunk.wanted:
        if delivery["dedupe"] in added:
            chunk.tally.planned += 1
            move.update(chunk.covered)
        else:
            chunk.tally.already += 1
    db.execute(
        update(SUBSCRIBERS).where(SUBSCRIBERS.c.id == bindparam("b_id"))
        .values(next_digest_at=bindparam("next_digest_at"),
                digest_since=bindparam("digest_since"), digest_seq=bindparam("digest_seq")),
        chunk.moves,
    )
