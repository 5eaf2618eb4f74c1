"""The workers: claim due rows, render, pace, send, and decide each attempt's outcome.

See the package's docstring for the order per row; `settling.py` records the outcomes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from bot import outbox
from bot.db import Database
from bot.delivery.settling import Outcome, Sent, Settle, Settler, settle
from bot.logs import fields
from bot.messages import Load, Renderer
from bot.messages.kinds import CLAIMED, Kind, Shared, kind_of
from bot.metrics import Metrics
from bot.rules.escalation import Verdict
from bot.settings import Config
from bot.transports import DeliveryError, Transport

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# A row withheld until a moment already past (an escalation waiting for its alert to be
# posted) is looked at again no sooner than this.
RECHECK = timedelta(seconds=5)


# A stored story's scored_at, read from its payload without decoding all of it (the payload
# is pydantic's compact JSON of a Story: `"scored_at":"…"` once, at the top level).
_SCORED_AT = re.compile(r'"scored_at":"([^"]+)"')


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Dispatcher:
    db: Database
    config: Config
    transports: Mapping[str, Transport]
    key: bytes
    clock: Clock = utcnow
    rng: random.Random = field(default_factory=random.Random)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: Outcome = field(default_factory=Outcome)
    metrics: Metrics = field(default_factory=Metrics)
    renderer: Renderer = field(init=False)
    _busy: set[str] = field(default_factory=set)
    _backlog: bool = False
    # This process's own pacing gaps. The database's `pacing` table is what every replica
    # obeys; this copy lets a worker wake at a gap's end without asking the database.
    _paced_until: dict[str, datetime] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _releasing: asyncio.Task[None] | None = None  # transports letting connections go (`_idle`)
    # Transports whose last send failed for a passing reason (a timeout, a 5xx, a dropped
    # connection), with since when: shown by /readyz until the next send through them works.
    failing: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    settler: Settler = field(init=False)

    def __post_init__(self) -> None:
        self.renderer = Renderer(self.config, self.key)
        self.settler = Settler(self.db)

    def wake(self) -> None:
        self.wakeup.set()

    def _blocked(self, now: datetime) -> set[str]:
        # Forget gaps that have passed, so the map stays as small as the targets paced now.
        self._paced_until = {t: until for t, until in self._paced_until.items() if until > now}
        return self._busy | set(self._paced_until)

    async def pass_once(self) -> int:
        """Claim what is due now and start sending it; return how many rows were claimed."""
        now = self.clock()
        workers = self.config.desk.delivery.workers
        free = workers - len(self._busy)
        # With a backlog (the last claim found all it asked for), wait while others are in
        # flight until half the workers are free: one claim then serves several rows, where
        # claiming each time one finishes costs a transaction a row. Without one, a new alert
        # goes the moment a worker is free.
        if free <= 0 or (self._busy and self._backlog and free < max(1, workers // 2)):
            return 0
        kept = self.settler.take_kept()
        try:
            claimed = await self.db.write_short(self._claim, now, free, self._blocked(now),
                                                kept)
        except OperationalError:  # unreachable or locked: keep them for the next claim
            self.settler.put_back(kept)
            raise
        self._backlog = len(claimed) >= free
        # Slack first: its task renders and posts before an email's render and SMTP session
        # start (the order tasks first run in), so an email due with it does not delay it.
        claimed.sort(key=lambda pair: pair[0].transport != "slack")
        for row, items in claimed:
            self._busy.add(row.target)
            task = asyncio.create_task(self._deliver(row, items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    def _claim(self, db: Connection, now: datetime, limit: int, blocked: set[str],
               kept: list[Settle]) -> list[tuple[Any, Load]]:
        """Record kept outcomes, claim due rows and load what each one's kind needs, in one
        transaction (one database hop)."""
        settle(db, kept)
        rows = outbox.claim(db, now, self.config.desk.delivery.lease, limit, blocked)
        return self._load(db, rows)

    @staticmethod
    def _load(db: Connection, rows: list[Any]) -> list[tuple[Any, Load]]:
        shared: Shared = {CLAIMED: rows}  # what rows of one claim share (one daily digest)
        return [(row, kind_of(row.kind).load(db, row, shared)) for row in rows]

    async def send_now(self, delivery_id: int) -> None:
        """Send one row now, whatever else is due (`alertbot test`); failures settle as usual."""
        def take(db: Connection) -> list[tuple[Any, Load]]:
            rows = outbox.take(db, [delivery_id], self.clock(), self.config.desk.delivery.lease)
            return self._load(db, rows)

        for row, load in await self.db.write(take):
            await self._attempt(row, load)

    async def run(self) -> None:
        """Deliver forever: wake on new rows, when a retry or pacing gap is due, or each second.

        A failing database does not end the loop: it logs, waits a second and tries again, so
        delivery resumes by itself when the database is back.
        """
        while True:
            self.wakeup.clear()
            try:
                claimed = await self.pass_once()
                if claimed and not self._backlog:
                    # It took every row due and free: nothing more until a delivery finishes
                    # or new rows come (each wakes us). Claiming again at once would find
                    # nothing, and would run before the deliveries just started get to send.
                    await self._sleep(None)
                elif claimed == 0:
                    if self._busy:  # a delivery finishing wakes us: no need to ask the database
                        await self._sleep(None)
                        continue
                    self._release()
                    await self._sleep(await self._next_due())
            except Exception:
                log.exception("delivery loop failed; retrying in 1 s")
                await asyncio.sleep(1)

    async def drain(self, longest_wait: timedelta) -> None:
        """Send everything due, waiting out pacing and retries up to `longest_wait` (check)."""
        while True:
            self.wakeup.clear()
            if await self.pass_once():
                continue
            if self._busy:  # a delivery finishing wakes us
                await self._sleep(None)
                continue
            due = await self.db.read(outbox.next_due, self.clock())  # paced targets included
            if not self._busy and (due is None or due - self.clock() > longest_wait):
                break
            await self._sleep(await self._next_due())
        await self._idle()

    async def _next_due(self) -> datetime | None:
        # Blocked targets are left out: their wake-up time is their pacing gap, not their row.
        # A short read: on SQLite on the loop itself (see `Database.lookup`).
        now = self.clock()
        return await self.db.lookup(outbox.next_due, now, self._blocked(now))

    async def _sleep(self, due: datetime | None) -> None:
        """Wait for a wake-up, the next due row or pacing gap, or one second, whichever first."""
        now = self.clock()
        moments = [until for until in self._paced_until.values() if until > now]
        if due is not None:
            moments.append(due)
        timeout = min([1.0, *((m - now).total_seconds() for m in moments)])
        # asyncio.timeout, not wait_for: on Python 3.11, wait_for returns normally when it is
        # cancelled in the same turn as the wake-up arrives, so a stop (SIGTERM, or the
        # service's close cancelling `run`) was sometimes lost and the loop ran on forever.
        with suppress(TimeoutError):
            async with asyncio.timeout(max(0.005, timeout)):
                await self.wakeup.wait()

    def _release(self) -> None:
        """The queue ran dry: let the transports close what they held for a batch, beside the
        loop rather than in it. An SMTP QUIT waits for the relay's reply (up to its timeout);
        awaited here, a new alert waited behind it, and a slow relay held up Slack too."""
        if self._releasing is None or self._releasing.done():
            self._releasing = asyncio.create_task(self._idle())

    async def _idle(self) -> None:
        for transport in self.transports.values():
            try:
                await transport.idle()
            except Exception:  # a connection that will not close politely is dropped anyway
                log.warning("%s: releasing idle connections failed", type(transport).__name__,
                            exc_info=True)

    async def finish(self, grace: float) -> None:
        """Wait up to `grace` seconds for the deliveries in flight (claim no more first): a
        replica stopped for an upgrade then leaves no row for the lease to bring back."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        await self.settler.finish()

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._releasing] if self._releasing else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for transport in self.transports.values():
            await transport.close()

    async def _deliver(self, row: Any, load: Load) -> None:
        try:
            await self._attempt(row, load)
        except Exception:  # e.g. the database went away mid-settle: the lease brings it back
            log.exception("delivery %s could not be recorded", row.id)
        finally:
            self._busy.discard(row.target)
            self.wake()

    async def _attempt(self, row: Any, load: Load) -> None:
        kind = kind_of(row.kind)
        if load.withheld is not None:
            await self._withhold(row, kind, load.withheld)
            return
        transport = self.transports[row.transport]
        failure: DeliveryError | None = None
        try:
            message = self.renderer.render(row.kind, row.transport, row.target, row.details,
                                           load, self.clock())
            remote_id = await transport.send(message)
        except DeliveryError as error:
            failure = error
        except Exception as exc:  # a bug, not the peer: count it, so the row ends dead
            log.exception("delivery %s failed inside alertbot", row.id)
            failure = DeliveryError(f"internal error: {exc!r}"[:500])
        # The gap starts whatever happened (a timed-out post may have arrived), before the
        # outcome is recorded with it.
        pacing = self.config.desk.slack.pacing if row.transport == "slack" else timedelta(0)
        self._paced_until[row.target] = max(
            self._paced_until.get(row.target, self.clock()), self.clock() + pacing
        )
        if failure is not None:
            await self._settle_failure(row, kind, failure)
            return
        sent = self.clock()
        self.failing.pop(row.transport, None)
        try:
            await self._record(row, sent=(row.id, row.attempts, sent, remote_id))
        finally:
            # Sent is sent: counted and logged even when the database cannot record it now
            # (kept for the next claim through an outage, or left to the lease).
            self._count(row, kind, "sent")
            kind.sent(row, self.metrics)
            if kind.instant:
                self._latency(row.transport, load, sent)
            if log.isEnabledFor(logging.INFO):  # the line's facts are built only when kept
                log.info("sent delivery %s (%s %s) to %s: %s", row.id, row.transport,
                         row.kind, row.target, row.reason[:300], extra=self._facts(row))

    async def _withhold(self, row: Any, kind: Kind, withheld: Verdict) -> None:
        """Settle a row its kind says must not be sent now, sending nothing: cancelled for
        good, or back to pending until `withheld.until` (not counted as an attempt)."""
        now = self.clock()
        if withheld.until is None:
            def cancel(db: Connection) -> None:
                outbox.cancel(db, [row.id], withheld.reason)

            await self._record(row, cancel)
            self._count(row, kind, "cancelled")
        else:
            retry_at = max(withheld.until, now + RECHECK)
            await self._record(row, lambda db: outbox.postpone(
                db, row.id, withheld.reason, retry_at, attempts=row.attempts))
            self._count(row, kind, "postponed")
        log.info("delivery %s (%s) to %s not sent: %s", row.id, row.kind, row.target,
                 withheld.reason, extra=self._facts(row))

    def _latency(self, transport: str, load: Load, sent: datetime) -> None:
        """How long after scoring each story of an instant message went out."""
        histogram = self.metrics.delivery_latency.labels(transport)
        for entry in load.items:
            found = _SCORED_AT.search(entry.payload)
            scored = datetime.fromisoformat(found[1] if found is not None
                                            else json.loads(entry.payload)["scored_at"])
            histogram.observe(max(0.0, (sent - scored).total_seconds()))

    async def _record(self, row: Any, settle: Callable[[Connection], None] | None = None,
                      sent: Sent | None = None) -> None:
        """Settle a row and store its target's pacing gap in one transaction (the gap lives
        in the database so that every replica keeps it), shared with the rows finishing
        meanwhile; return once it is committed."""
        until = self._paced_until.get(row.target)
        gap_ends = until if until is not None and until > self.clock() else None
        await self.settler.record(Settle(row.target, gap_ends, sent, settle))

    @staticmethod
    def _facts(row: Any) -> dict[str, Any]:
        return fields(delivery_id=row.id, route=row.target, kind=row.kind, reason=row.reason)

    def _count(self, row: Any, kind: Kind, result: str) -> None:
        """Counted under the kind's name: a row stored under a former name counts as its kind."""
        self.outcome.counts[kind.name, result] += 1
        self.metrics.deliveries.labels(row.transport, kind.name, result).inc()

    async def _settle_failure(self, row: Any, kind: Kind, error: DeliveryError) -> None:
        now = self.clock()
        if error.retry_after is not None and not kind.one_try:
            retry_at = now + timedelta(seconds=error.retry_after)
            # No call to that target before then (nor within its pacing gap).
            self._paced_until[row.target] = max(self._paced_until.get(row.target, now), retry_at)
            await self._record(row, lambda db: outbox.postpone(db, row.id, str(error), retry_at,
                                                               attempts=row.attempts))
            self._count(row, kind, "postponed")
            log.warning("delivery %s to %s postponed: %s", row.id, row.target, error,
                        extra=self._facts(row))
            return
        if not error.permanent:  # a permanent error is the address's, not the transport's
            since = self.failing.get(row.transport, (now, ""))[0]
            self.failing[row.transport] = (since, str(error)[:200])
        delivery = self.config.desk.delivery
        # A one-try kind (a test message) reports its outcome now rather than retrying behind
        # the operator's back.
        dead = error.permanent or row.attempts >= delivery.max_attempts or kind.one_try
        retry_at = now + outbox.backoff(row.attempts, delivery.retry_base, delivery.retry_cap,
                                        self.rng)
        await self._record(row, lambda db: outbox.mark_failed(
            db, row.id, str(error), dead=dead, retry_at=retry_at, attempts=row.attempts))
        self._count(row, kind, "dead" if dead else "failed")
        log.warning("delivery %s to %s %s (attempt %s): %s", row.id, row.target,
                    "dead" if dead else "failed, will retry", row.attempts, error,
                    extra=self._facts(row))
