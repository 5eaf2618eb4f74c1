"""Stories in, outbox rows out: store → evaluate per target → record matches → plan messages.

Every door (file poll, push, `alertbot ingest`) calls `Pipeline.ingest`, which commits and then
wakes the delivery workers. `flush` closes batch windows that have run out (a scheduler tick).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from bot import outbox
from bot.db import PLAN_LOCK, Database, take_turns
from bot.logs import fields
from bot.metrics import Metrics, origin_kind
from bot.readers import slack_routes, subscribers
from bot.rules.gate import Figures, change, gate, global_thresholds
from bot.rules.targets import (
    ByTopic,
    Match,
    Target,
    email_target,
    match,
    slack_route_target,
    slack_targets,
)
from bot.settings import Config
from bot.stories import archive
from bot.stories.archive import Saved
from bot.stories.model import Story
from bot.stories.parsing import Batch, Chunks, full_collections_deferred

log = logging.getLogger(__name__)
CHUNK = 1000  # stories per transaction
SHORT_INGEST = 2  # stories a push may hold to be answered after its deliveries start
LOOP_INGEST = 100  # stories a chunk may hold to be stored on the loop (see `_store`)


@dataclass
class Report:
    """What one ingest did, for the CLI's summary and the push API's answer."""

    accepted: list[str] = field(default_factory=list)  # ids stored (new or newer)
    unchanged: list[str] = field(default_factory=list)  # ids whose payload was not newer
    rejected: list[dict[str, object]] = field(default_factory=list)
    matched: int = 0
    planned: int = 0

    def merge(self, other: Report) -> None:
        self.accepted += other.accepted
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        self.matched += other.matched
        self.planned += other.planned


class Evaluated(NamedTuple):
    """One chunk's transaction: its report, and what to log once it is committed."""

    report: Report
    planned: list[outbox.Planned]
    flagged: list[Saved]


@dataclass
class Pipeline:
    db: Database
    config: Config
    wake: Callable[[], None] = lambda: None
    metrics: Metrics = field(default_factory=Metrics)
    # The config's routes as targets, built once per desk config (fixed while it runs).
    _routes: tuple[object, list[Target]] | None = field(default=None, init=False, repr=False)

    def targets(self, db: Connection, now: datetime) -> dict[str, Target]:
        """Every current target: Slack routes from the config, instant email subscribers not
        paused at `now`."""
        desk = self.config.desk
        if self._routes is None or self._routes[0] is not desk:
            self._routes = (desk, slack_targets(desk))
        found = {t.key: t for t in self._routes[1]}
        for route in slack_routes.listing(db):
            target = slack_route_target(route, self.config.desk)
            found.setdefault(target.key, target)  # a config route for the channel wins
        # daily ones are not targets, nor those who paused email
        for sub in subscribers.listing(db, subscribers.INSTANT, now):
            target = email_target(sub.email, sub.topics, self.config.desk, sub.min_impact)
            found[target.key] = target
        return found

    async def ingest(self, batch: Batch | Chunks, origin: str, now: datetime,
                     progress: Callable[[int], object] = lambda done: None) -> Report:
        """Store, evaluate and plan one batch; record rejections. Commits, then wakes workers.

        A parsed `Batch` is stored a chunk at a time. `Chunks` (an input not parsed yet) are
        parsed a chunk at a time in a worker thread, then stored: the event loop stays free,
        and only one chunk's stories are alive at once. Parsing the next chunk *while* this
        one is stored was measured slower (1.20 against 1.08 s for 10,000 stories):
        `sqlite3` takes the GIL back for every row of an `executemany`, and each time waited
        for the parsing thread. `progress` hears how many stories each committed chunk held.
        """
        report = Report()
        with full_collections_deferred():  # the batch is long-lived: see its docstring
            if isinstance(batch, Batch):
                for part in _chunked(batch):
                    await self._store(part, origin, now, report, progress)
            else:
                while (chunk := await asyncio.to_thread(_next, batch)) is not None:
                    await self._store(chunk, origin, now, report, progress)
        door = origin_kind(origin)
        self.metrics.stories_ingested.labels(door).inc(len(report.accepted))
        self.metrics.stories_rejected.labels(door).inc(len(report.rejected))
        if report.planned:
            self.wake()
        return report

    async def _store(self, chunk: Batch, origin: str, now: datetime, report: Report,
                     progress: Callable[[int], object]) -> None:
        """Record one chunk's rejections, then store, evaluate and plan its stories."""
        rejected = Report(rejected=[
            {"position": r.position, "id": r.story_id, "field": r.field, "reason": r.reason}
            for r in chunk.rejections
        ])
        for rejection in chunk.rejections:
            log.info("rejected %s from %s", rejection.describe(), origin, extra=fields(
                story_id=rejection.story_id, origin=origin, field=rejection.field,
                reason=rejection.reason))
        if chunk.rejections:
            await self.db.write(archive.record_rejections, chunk.rejections, origin, now)
        report.merge(rejected)
        if chunk.stories:
            # A push of up to LOOP_INGEST stories is stored where a claim is
            # (Database.write_short): on SQLite, on the loop while the database thread is
            # idle. For one story that saves the hop there and back on the alert's path; for a
            # hundred (~13 ms) it saves the GIL changing hands with the delivery loop, which
            # cost more CPU than the thread won (docs/performance.md). Bigger chunks (files,
            # large pushes) go to the thread, leaving the loop to answer meanwhile.
            write = self.db.write_short if len(chunk.stories) <= LOOP_INGEST else self.db.write
            done = await write(self._evaluate, chunk.stories, now)
            # Logged once committed: a transaction retried on the thread after losing the
            # lock on the loop (or rolled back) would otherwise log what it had not done. A
            # big chunk's lines (up to one a story) are formatted off the loop, as it was stored.
            if write is self.db.write:
                await asyncio.to_thread(_said, done)
            else:
                _said(done)
            report.merge(done.report)
            progress(len(chunk.stories))

    def _evaluate(self, db: Connection, stories: list[Story], now: datetime) -> Evaluated:
        """Store, match and plan one chunk, in one transaction (one replica at a time: two
        storing one story, or grouping one target's matches, would each do it)."""
        take_turns(db, PLAN_LOCK)
        rules = self.config.desk.rules
        saved = archive.save(db, stories, global_thresholds(rules), rules.max_alert_age, now)
        targets = self.targets(db, now)
        index = ByTopic(targets.values())  # only the decisions to send are kept: see ByTopic
        decisions: list[Match] = [
            match(s.story, s.corroboration, target, now, rules.max_alert_age)
            for s in saved for target in index.could_take(s.story)
        ]
        replaced = {s.story.id for s in saved if s.replaced}  # only these can have matches
        matched = outbox.record_matches(db, decisions, now, replaced)
        planned = outbox.plan_deliveries(db, targets, now) if matched else []
        edits = self._edit_posted(db, [s for s in saved if s.replaced], now)
        stored = {s.story.id for s in saved}
        report = Report(
            accepted=[s.story.id for s in saved],
            unchanged=sorted({s.id for s in stories} - stored),
            matched=matched, planned=len(planned) + edits,
        )
        return Evaluated(report, planned, [s for s in saved if s.corroboration.flag])

    def _edit_posted(self, db: Connection, rescored: list[Saved], now: datetime) -> int:
        """Queue an edit of every posted Slack message showing a story whose figures changed."""
        limits = global_thresholds(self.config.desk.rules)
        queued = 0
        for saved in rescored:
            story, count = saved.story, saved.corroboration.count
            verdict = gate(story.impact, count, limits)
            after = Figures(float(story.impact), count, verdict.qualifies)
            details = change(saved.before, after, verdict.why) if saved.before else None
            if details is None:
                continue
            version = (str(story.version) if story.version is not None
                       else story.scored_at.isoformat())
            for parent in outbox.posted(db, story.id):
                queued += outbox.enqueue_update(db, parent, story.id, version, details, now)
        return queued

    async def flush(self, now: datetime, close_windows: bool = False) -> int:
        """Plan held batches whose window has closed (or all of them); return rows created."""
        # Short (on SQLite, on the loop while the database thread is idle): it runs every
        # second, and mostly finds nothing to plan; a hop to the thread then costs more.
        planned = await self.db.write_short(self._plan, now, close_windows)
        if planned:
            _logged(planned)
            self.wake()
        return len(planned)

    def _plan(self, db: Connection, now: datetime, close_windows: bool) -> list[outbox.Planned]:
        take_turns(db, PLAN_LOCK)  # as in `_evaluate`
        if not outbox.has_unplanned(db):  # the usual case: no batch is being held
            return []
        return outbox.plan_deliveries(db, self.targets(db, now), now, close_windows)


def _next(chunks: Chunks) -> Batch | None:
    return next(chunks, None)


def _chunked(batch: Batch) -> Iterator[Batch]:
    """A parsed batch as chunks of CHUNK stories, the rejections with the first."""
    yield Batch(batch.stories[:CHUNK], batch.rejections)
    for start in range(CHUNK, len(batch.stories), CHUNK):
        yield Batch(batch.stories[start : start + CHUNK], [])


def _said(done: Evaluated) -> None:
    for saved in done.flagged:
        log.info("story %s flagged: %s", saved.story.id, saved.corroboration.flag)
    _logged(done.planned)


def _logged(planned: list[outbox.Planned]) -> int:
    """Log each message planned (committed): which stories, where, and why. Return how many."""
    for row in planned:
        log.info("planned %s of %s to %s: %s", row.kind, ", ".join(row.story_ids[:10]),
                 row.target, row.reason[:300], extra=fields(
                     story_id=",".join(row.story_ids), route=row.target, kind=row.kind,
                     reason=row.reason))
    return len(planned)
