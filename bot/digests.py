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
from bot.rules import corroborate
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
    sources: int
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


def candidates(db: Connection, since: datetime, until: datetime) -> list[Candidate]:
    """Action items that became action items in (since, until], as stored now."""
    rows = db.execute(
        select(STORIES.c.payload, STORIES.c.corroboration, STORIES.c.qualified_at)
        .where(STORIES.c.qualifies.is_(True), STORIES.c.qualified_at > since,
               STORIES.c.qualified_at <= until)
    )
    return [Candidate(Story.model_validate_json(r.payload), r.corroboration, r.qualified_at)
            for r in rows]


def select_for(subscriber: Subscriber, found: Iterable[Candidate], since: datetime,
               until: datetime, desk: DeskConfig) -> list[Candidate]:
    """The subscriber's items: in their window and topics; highest impact, then most sources."""
    target = email_target(subscriber.email, subscriber.topics, desk)
    chosen = [
        c for c in found
        if since < c.qualified_at <= until
        and match(c.story, corroborate(c.story), target, c.qualified_at,
                  desk.rules.max_alert_age).send
    ]
    return sorted(chosen, key=lambda c: (-c.story.impact, -c.sources, -c.qualified_at.timestamp()))


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


def contents(db: Connection, subscriber: Subscriber, desk: DeskConfig, now: datetime,
             found: Sequence[Candidate] | None = None,
             alerted: set[tuple[str, str]] | None = None) -> Contents:
    """What `subscriber`'s digest would hold if it went now (read only: `preview` uses it)."""
    until = now - SETTLE
    start = subscriber.digest_since or until - FIRST_LOOKBACK
    if found is None:
        found = candidates(db, start, until)
    chosen = select_for(subscriber, found, start, until, desk)
    if alerted is None:
        alerted = (_alerted(db, [subscriber.email], [c.story.id for c in chosen])
                   if subscriber.mode == "both" else set())
    return Contents(local_date(now, subscriber.timezone), start, until, subscriber.timezone,
                    chosen,
                    frozenset(c.story.id for c in chosen if (subscriber.email, c.story.id)
                              in alerted))


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
    found = candidates(db, min(starts), until)
    both = [row.email for row in rows if row.mode == "both"]
    alerted = _alerted(db, both, sorted({c.story.id for c in found}))
    tally = Tally()
    moves: list[dict[str, Any]] = []
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
        digest = contents(db, subscriber, desk, now, found, alerted)
        if not digest.stories and not desk.email.send_empty_digest:
            tally.empty += 1
            move["digest_since"] = digest.until  # nothing happened in that window
            continue
        reason = (f"{why}: {len(digest.stories)} action items since "
                  f"{digest.since:%Y-%m-%d %H:%M} UTC")
        added = outbox.add(
            db, now, dedupe=f"daily:{row.email}:{day.isoformat()}", transport="email",
            target=f"email:{row.email}", kind="daily", reason=reason, details=digest.details(),
        )
        if added is None:
            tally.already += 1
        else:
            tally.planned += 1
            move["digest_since"] = digest.until
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

