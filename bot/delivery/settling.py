"""Recording the workers' outcomes: many attempts settled in one transaction (group commit).

An outcome and its target's pacing gap are committed together, in the database, so that every
replica keeps the gap. Deliveries finishing while a settle transaction runs wait and share the
next one: with a backlog one transaction settles many rows, where a transaction each cost
~1.5 ms of the one database thread per message.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from bot import outbox
from bot.db import Database

Sent = tuple[int, int, datetime, str | None]  # see outbox.mark_sent_many


@dataclass
class Outcome:
    """What the workers did, counted as (kind, result): result is sent, failed, dead or
    postponed; kind is a kind's name (`bot.messages.kinds.KINDS`)."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def total(self, result: str, kinds: Collection[str] | None = None) -> int:
        return sum(n for (kind, res), n in self.counts.items()
                   if res == result and (kinds is None or kind in kinds))


@dataclass(eq=False)
class Settle:
    """One finished attempt's outcome, waiting for the next settle transaction."""

    target: str
    gap_ends: datetime | None  # the target's pacing gap, stored with the outcome
    sent: Sent | None = None
    work: Callable[[Connection], None] | None = None  # any other outcome
    done: bool = False
    error: BaseException | None = None  # the transaction that carried it failed


def settle(db: Connection, batch: list[Settle]) -> None:
    """Record many attempts' outcomes and their targets' pacing gaps in one transaction."""
    outbox.mark_sent_many(db, [entry.sent for entry in batch if entry.sent is not None])
    gaps: dict[str, datetime] = {}
    for entry in batch:
        if entry.work is not None:
            entry.work(db)
        if entry.gap_ends is not None:
            gaps[entry.target] = max(entry.gap_ends, gaps.get(entry.target, entry.gap_ends))
    outbox.pace_many(db, gaps)


@dataclass
class Settler:
    """Outcomes waiting for a transaction, and those kept through a database outage."""

    db: Database
    _unsettled: list[Settle] = field(default_factory=list)
    _settling: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Outcomes whose transaction failed (the database went away after the send): recorded
    # by the next claim, before it claims, so a row sent during an outage is not sent again
    # when its lease runs out.
    kept: list[Settle] = field(default_factory=list)

    async def record(self, entry: Settle) -> None:
        """Commit `entry` with the outcomes finishing meanwhile; return once it is committed."""
        self._unsettled.append(entry)
        # One turn of the loop first: deliveries answered in the same turn join this
        # transaction (a short one may run on the loop itself, where nothing else can join).
        await asyncio.sleep(0)
        async with self._settling:
            if not entry.done:  # else the transaction that ran while we waited carried it
                batch, self._unsettled = self._unsettled, []
                try:
                    await self.db.write_short(settle, batch)
                except Exception as exc:
                    # Kept only while the database is unreachable: an outcome it refuses
                    # otherwise must not block every later claim; the lease brings it back.
                    if isinstance(exc, OperationalError):
                        self.kept += batch
                    for other in batch:
                        other.error = exc
                finally:
                    for other in batch:
                        other.done = True
        if entry.error is not None:
            raise entry.error

    def take_kept(self) -> list[Settle]:
        kept, self.kept = self.kept, []
        return kept

    def put_back(self, kept: list[Settle]) -> None:
        self.kept = kept + self.kept

    async def finish(self) -> None:
        """Record the kept outcomes if the database answers again (else the lease brings
        their rows back)."""
        if self.kept:
            try:
                await self.db.write(settle, self.kept)
            except Exception:  # still failing: the lease brings those rows back
                return
            self.kept = []
