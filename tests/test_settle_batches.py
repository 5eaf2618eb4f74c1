"""Settling many rows in one transaction (the delivery workers' group commit), on SQLite and
on a real PostgreSQL: every row settles, a late outcome never overwrites a later attempt's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from bot import db as database
from bot import outbox
from bot.db.schema import DELIVERIES

NOW = datetime.now(UTC).replace(microsecond=0)
LEASE = timedelta(seconds=30)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return database.create(database_url)


def _statuses(engine: Engine) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as db:
        return {row.target: (row.status, row.remote_id) for row in db.execute(
            select(DELIVERIES.c.target, DELIVERIES.c.status, DELIVERIES.c.remote_id))}


def test_one_statement_settles_every_row_sent_and_paces_their_targets(engine: Engine) -> None:
    targets = [f"slack:C{n:03d}" for n in range(20)]
    with engine.begin() as db:
        for n, target in enumerate(targets):
            outbox.add(db, NOW, dedupe=f"k{n}", transport="slack", target=target, kind="test",
                       reason="why")
        rows = outbox.claim(db, NOW, LEASE, 20, set())
    assert len(rows) == 20
    gap_ends = NOW + timedelta(seconds=5)
    with engine.begin() as db:
        outbox.mark_sent_many(db, [(r.id, r.attempts, NOW, f"ts-{r.id}") for r in rows])
        outbox.pace_many(db, {r.target: gap_ends for r in rows[:10]})
    assert _statuses(engine) == {r.target: ("sent", f"ts-{r.id}") for r in rows}
    with engine.begin() as db:  # a second gap for a target replaces the first
        outbox.pace_many(db, {rows[0].target: gap_ends + timedelta(seconds=5)})
        for n, target in enumerate(targets):
            outbox.add(db, NOW, dedupe=f"again{n}", transport="slack", target=target,
                       kind="test", reason="why")
        # The paced targets wait for their gap; the other ten go now.
        assert {r.target for r in outbox.claim(db, NOW, LEASE, 20, set())} == set(targets[10:])
        assert outbox.next_due(db, NOW) == gap_ends


def test_a_late_outcome_leaves_a_row_claimed_again_since_alone(engine: Engine) -> None:
    """An outcome kept through a database outage is recorded after the lease may have run
    out: if another worker claimed the row meanwhile, that attempt's outcome stands."""
    with engine.begin() as db:
        outbox.add(db, NOW, dedupe="k", transport="slack", target="slack:CA", kind="test",
                   reason="why")
        [first] = outbox.claim(db, NOW, LEASE, 1, set())
        later = NOW + LEASE + timedelta(seconds=1)
        assert outbox.recover_leases(db, later) == 1
        [second] = outbox.claim(db, later, LEASE, 1, set())
    assert (first.attempts, second.attempts) == (1, 2)
    with engine.begin() as db:  # the first attempt's outcomes, late: none applies
        outbox.mark_sent_many(db, [(first.id, first.attempts, later, "ts-first")])
        outbox.mark_failed(db, first.id, "late", dead=True, retry_at=later,
                           attempts=first.attempts)
        outbox.postpone(db, first.id, "late", later, attempts=first.attempts)
    assert _statuses(engine) == {"slack:CA": ("sending", None)}
    with engine.begin() as db:
        outbox.mark_sent_many(db, [(second.id, second.attempts, later, "ts-second")])
    assert _statuses(engine) == {"slack:CA": ("sent", "ts-second")}


def test_a_row_left_pending_by_its_lease_still_takes_its_own_late_outcome(engine: Engine
                                                                          ) -> None:
    """Sent during an outage, its lease ran out, nobody claimed it yet: the kept outcome
    settles it, so it is not sent again."""
    with engine.begin() as db:
        outbox.add(db, NOW, dedupe="k", transport="slack", target="slack:CA", kind="test",
                   reason="why")
        [row] = outbox.claim(db, NOW, LEASE, 1, set())
        later = NOW + LEASE + timedelta(seconds=1)
        assert outbox.recover_leases(db, later) == 1
        outbox.mark_sent_many(db, [(row.id, row.attempts, later, "ts")])
        assert outbox.claim(db, later, LEASE, 1, set()) == []
    assert _statuses(engine) == {"slack:CA": ("sent", "ts")}
