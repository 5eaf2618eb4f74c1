"""The durable outbox and the story archive, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from bot import archive, outbox
from bot import db as database
from bot.db import Database
from bot.db.schema import DELIVERIES, MATCHES, VERSIONS
from bot.pipeline import Pipeline
from bot.stories import parse_batch
from tests.conftest import make_config, story

NOW = datetime.now(UTC).replace(microsecond=0)
LEASE = timedelta(seconds=30)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return database.create(database_url)


def add_rows(engine: Engine, targets: list[str]) -> None:
    with engine.begin() as db:
        for n, target in enumerate(targets):
            outbox.add(db, NOW, dedupe=f"k{n}", transport="slack", target=target, kind="test",
                       reason="why")


def test_each_row_is_claimed_by_exactly_one_worker(database_url: str, engine: Engine) -> None:
    add_rows(engine, [f"slack:C{n:04d}" for n in range(40)])

    def worker(_: int) -> list[int]:
        own = database.create(database_url)  # each worker its own connections, as replicas
        claimed: list[int] = []
        while True:
            with own.begin() as db:
                rows = outbox.claim(db, NOW, LEASE, 3, set())
            if not rows:
                own.dispose()
                return claimed
            claimed += [row.id for row in rows]

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(worker, range(2))
    assert sorted(first + second) == list(range(1, 41))
    assert not set(first) & set(second)


def test_a_claim_takes_one_row_per_target_and_skips_busy_targets(engine: Engine) -> None:
    add_rows(engine, ["slack:CA", "slack:CA", "slack:CB", "slack:CC"])
    with engine.begin() as db:
        rows = outbox.claim(db, NOW, LEASE, 10, busy={"slack:CC"})
    assert sorted((row.id, row.target) for row in rows) == [(1, "slack:CA"), (3, "slack:CB")]
    assert {row.status for row in rows} == {"sending"}


def test_a_row_left_sending_returns_to_pending_after_its_lease(engine: Engine) -> None:
    add_rows(engine, ["slack:CA"])
    with engine.begin() as db:
        [row] = outbox.claim(db, NOW, LEASE, 1, set())
        assert outbox.recover_leases(db, NOW + LEASE - timedelta(seconds=1)) == 0
        assert outbox.recover_leases(db, NOW + LEASE + timedelta(seconds=1)) == 1
        [again] = outbox.claim(db, NOW + LEASE + timedelta(seconds=1), LEASE, 1, set())
    assert again.id == row.id and again.attempts == 2


def test_a_dedupe_key_is_written_once(engine: Engine) -> None:
    row = {"dedupe": "same", "transport": "slack", "target": "slack:CA", "kind": "test",
           "reason": "why"}
    with engine.begin() as db:
        assert outbox.add(db, NOW, **row) == 1
        assert outbox.add(db, NOW, **row) is None
    # The constraint itself holds too, for two processes racing past the check.
    with pytest.raises(IntegrityError), engine.begin() as db:
        db.execute(DELIVERIES.insert().values(
            dedupe_key="same", transport="slack", target="slack:CA", kind="test", reason="why",
            status="pending", attempts=0, not_before=NOW, created_at=NOW))


def test_failed_rows_wait_for_their_backoff_and_dead_rows_can_be_retried(engine: Engine
                                                                         ) -> None:
    add_rows(engine, ["slack:CA"])
    with engine.begin() as db:
        [row] = outbox.claim(db, NOW, LEASE, 1, set())
        outbox.mark_failed(db, row.id, "boom", dead=False, retry_at=NOW + LEASE)
        assert outbox.claim(db, NOW, LEASE, 1, set()) == []
        [row] = outbox.claim(db, NOW + LEASE, LEASE, 1, set())
        outbox.mark_failed(db, row.id, "SMTP 550 no such user", dead=True, retry_at=NOW)
        assert outbox.claim(db, NOW + 2 * LEASE, LEASE, 1, set()) == []
        [dead] = outbox.listing(db, "dead")
        assert dead.last_error == "SMTP 550 no such user"
        assert outbox.retry(db, NOW, None) == 1
        assert [r.id for r in outbox.claim(db, NOW, LEASE, 1, set())] == [row.id]


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng, base, cap = random.Random(7), timedelta(seconds=2), timedelta(seconds=60)
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (10, 60)]:
        delay = outbox.backoff(attempt, base, cap, rng).total_seconds()
        assert ceiling / 2 <= delay <= ceiling


async def test_reingesting_the_same_stories_stores_and_alerts_nothing_new(
    database_url: str, tmp_path: Path
) -> None:
    db = Database(database_url)
    pipeline = Pipeline(db, make_config(tmp_path, database_url))
    payload = json.dumps([story(id=f"s{n}", scored_at=NOW.isoformat()) for n in range(5)])
    first = await pipeline.ingest(parse_batch(payload), "test", NOW)
    again = await pipeline.ingest(parse_batch(payload), "test", NOW)
    assert (len(first.accepted), first.matched) == (5, 5)
    assert (again.accepted, len(again.unchanged), again.matched) == ([], 5, 0)
    with db.engine.connect() as conn:
        assert [len(archive.history(conn, f"s{n}")) for n in range(5)] == [1] * 5
        assert len(list(conn.execute(select(MATCHES)))) == 5
        assert archive.load(conn, ["s0"])["s0"].scored_at == NOW
    newer = json.dumps(story(id="s0", scored_at=(NOW + timedelta(minutes=5)).isoformat(),
                             impact=9))
    assert (await pipeline.ingest(parse_batch(newer), "test", NOW)).accepted == ["s0"]
    with db.engine.connect() as conn:
        assert [(v.impact, v.scored_at) for v in archive.history(conn, "s0")] == [
            (8, NOW), (9, NOW + timedelta(minutes=5))]
        assert len(list(conn.execute(select(VERSIONS)))) == 1
    db.close()
