"""Daily digests (SPEC §5): one outbox row per subscriber per local date, planned when due.

A subscriber's row names the action items that became action items since their previous digest
(24 h back on the first), best first. Its dedupe key is `daily:<address>:<local date>`, so a
restart, a second replica or `digest send --now` can never plan a second one for that date.
Subscribers whose digest is due are found by `next_digest_at` (indexed), claimed with
`FOR UPDATE SKIP LOCKED` on PostgreSQL, and moved on to their next local date in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bot import outbox
from bot.db.schema import DELIVERIES, MATCHES, STORIES, SUBSCRIBERS
from bot.digest_clock import digest_time, due, local_date
from bot.routes import email_target, match
from bot.rules import Corroboration, corroborate
from bot.settings import DeskConfig
from bot.stories import Story
from bot.subscribers import DAILY, Subscriber

CHUNK = 500  # subscribers per transaction
FIRST_LOOKBACK = timedelta(hours=24)  # SPEC §5: at most 24 h back on the first digest
# A digest covers action items up to a minute before it is planned. An ingest stamps its
# stories with the time it began and commits a little later; without this margin a story
# stamped just before a digest but committed just after it would fall between two digests.
SETTLE = timedelta(minutes=1)


@dataclass(frozen=True)
class Candidate:
    """An action item that may go in a digest."""

    story: Story
    corroboration: Corroboration
    qualified_at: datetime


@dataclass(frozen=True)
class Contents:
    """What one subscriber's digest holds, best first, and which were already emailed to them."""

    day: date
    since: datetime
    until: datetime
    timezone: str
    stories: list[Candidate]
    alerted: frozenset[str]

    def details(self) -> dict[str, Any]:
        """What the outbox row keeps, for rendering and for the record."""
        return {"date": self.day.isoformat(), "since": self.since.isoformat(),
                "timezone": self.timezone, "stories": [c.story.id for c in self.stories],
                "alerted": sorted(self.alerted)}


@dataclass
class Tally:
    planned: int = 0
    empty: int = 0  # nothing to say and `send_empty_digest` off: no email
    already: int = 0  # that date's digest exists (planned before, elsewhere, or by --now)
    missed: int = 0  # the digest hour passed while alertbot was down all that local day

    def merge(self, other: Tally) -> None:
        self.planned += other.planned
        self.empty += other.empty
        self.already += other.already
        self.missed += other.missed


def candidates(db: Connection, since: datetime, until: datetime, desk: DeskConfig
               ) -> list[Candidate]:
    """Action items that became action items in (since, until], as stored now, that pass the
    desk's rule and were fresh when they arrived; best first: highest impact, then most
    sources, then newest."""
    rows = db.execute(
        select(STORIES.c.payload, STORIES.c.qualified_at)
        .where(STORIES.c.qualifies.is_(True), STORIES.c.qualified_at > since,
               STORIES.c.qualified_at <= until)
    )
    anyone = email_target("", (), desk)  # the rule without a reader's topics
    found = []
    for row in rows:
        story = Story.model_validate_json(row.payload)
        corroboration = corroborate(story)
        if match(story, corroboration, anyone, row.qualified_at, desk.rules.max_alert_age).send:
            found.append(Candidate(story, corroboration, row.qualified_at))
    return sorted(found, key=lambda c: (-c.story.impact, -c.corroboration.count,
                                        -c.qualified_at.timestamp()))


def select_for(topics: Iterable[str], found: Iterable[Candidate], since: datetime,
               until: datetime) -> list[Candidate]:
    """A reader's items, in `found`'s order: in their window and, if they chose topics, in one.

    Topics match as they do for instant alerts (`routes.match`): any of the reader's topics.
    """
    wanted = frozenset(topics)
    return [c for c in found if since < c.qualified_at <= until
            and (not wanted or wanted & c.story.topic_set)]


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


Chosen = dict[tuple[tuple[str, ...], datetime], list[Candidate]]


def contents(db: Connection, subscriber: Subscriber, desk: DeskConfig, now: datetime,
             found: Sequence[Candidate] | None = None,
             alerted: set[tuple[str, str]] | None = None, chosen: Chosen | None = None
             ) -> Contents:
    """What `subscriber`'s digest would hold if it went now (read only: `preview` uses it).

    Planning passes what it read once for many readers: the candidates, the instant alerts
    already sent, and `chosen`, where readers with the same topics and window share a list.
    """
    until = now - SETTLE
    start = subscriber.digest_since or until - FIRST_LOOKBACK
    if found is None:
        found = candidates(db, start, until, desk)
    key = (subscriber.topics, start)
    picked = chosen.get(key) if chosen is not None else None
    if picked is None:
        picked = select_for(subscriber.topics, found, start, until)
        if chosen is not None:
            chosen[key] = picked
    if alerted is None:
        alerted = (_alerted(db, [subscriber.email], [c.story.id for c in picked])
                   if subscriber.mode == "both" else set())
    marked = (frozenset(c.story.id for c in picked if (subscriber.email, c.story.id) in alerted)
              if subscriber.mode == "both" else frozenset())
    return Contents(local_date(now, subscriber.timezone), start, until, subscriber.timezone,
                    picked, marked)


def plan_chunk(db: Connection, desk: DeskConfig, now: datetime, force: bool = False,
               after_id: int = 0) -> tuple[Tally, int | None]:
    """Plan the digests of up to CHUNK due subscribers; return the tally and the last id seen.

    `force` (digest send --now): every daily subscriber's digest for their local today, due or
    not, walking subscribers by id from `after_id`. The last id is None when none were left.
    """
    query = select(SUBSCRIBERS).where(SUBSCRIBERS.c.mode.in_(DAILY)).order_by(SUBSCRIBERS.c.id)
    if force:
        query = query.where(SUBSCRIBERS.c.id > after_id)
    else:
        query = query.where(SUBSCRIBERS.c.next_digest_at <= now)
    rows = list(db.execute(query.limit(CHUNK).with_for_update(skip_locked=True)))
    if not rows:
        return Tally(), None
    until = now - SETTLE
    starts = [row.digest_since or until - FIRST_LOOKBACK for row in rows]
    found = candidates(db, min(starts), until, desk)
    chosen: Chosen = {}
    both = [row.email for row in rows if row.mode == "both"]
    alerted = _alerted(db, both, sorted({c.story.id for c in found}))
    tally = Tally()
    moves: list[dict[str, Any]] = []
    wanted: list[tuple[dict[str, Any], dict[str, Any], datetime]] = []
    for row in rows:
        subscriber = Subscriber(row.email, row.mode, row.timezone, tuple(row.topics),
                                row.digest_hour, row.next_digest_at, row.digest_since)
        today = local_date(now, row.timezone)
        tomorrow = digest_time(today + timedelta(days=1), row.timezone, row.digest_hour)
        if force:
            day: date | None = today
            next_at, why = tomorrow, f"daily digest for {today} (sent early: digest send --now)"
        else:
            day, next_at, why = due(now, row.timezone, row.digest_hour, row.next_digest_at)
        move = {"b_id": row.id, "next_digest_at": next_at, "digest_since": row.digest_since}
        moves.append(move)
        if day is None:
            tally.missed += 1
            continue
        digest = contents(db, subscriber, desk, now, found, alerted, chosen)
        if not digest.stories and not desk.email.send_empty_digest:
            tally.empty += 1
            move["digest_since"] = digest.until  # nothing happened in that window
            continue
        reason = (f"{why}: {len(digest.stories)} action items since "
                  f"{digest.since:%Y-%m-%d %H:%M} UTC")
        wanted.append(({"dedupe": f"daily:{row.email}:{day.isoformat()}", "transport": "email",
                        "target": f"email:{row.email}", "kind": "daily", "reason": reason,
                        "details": digest.details()}, move, digest.until))
    added = outbox.add_many(db, now, [delivery for delivery, _, _ in wanted])
    for delivery, move, until in wanted:
        if delivery["dedupe"] in added:
            tally.planned += 1
            move["digest_since"] = until
        else:
            tally.already += 1  # that date's digest exists: this reader's window stays
    db.execute(
        update(SUBSCRIBERS).where(SUBSCRIBERS.c.id == bindparam("b_id"))
        .values(next_digest_at=bindparam("next_digest_at"),
                digest_since=bindparam("digest_since")),
        moves,
    )
    return tally, rows[-1].id


def stories_of(db: Connection, details: dict[str, Any]) -> list[Any]:
    """A daily row's stories as stored now, in the row's order, shaped like `items_of` rows."""
    ids: list[str] = details.get("stories", [])
    if not ids:
        return []
    rows = {row.story_id: row for row in db.execute(
        select(STORIES.c.id.label("story_id"), STORIES.c.payload).where(STORIES.c.id.in_(ids))
    )}
    return [rows[i] for i in ids if i in rows]

