"""The durable outbox and the story archive, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from bot import db as database
from bot import outbox
from bot.db import Database
from bot.db.schema import DELIVERIES, MATCHES, VERSIONS
from bot.pipeline import Pipeline
from bot.stories import archive
from bot.stories.parsing import parse_batch
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


def test_replicas_never_send_to_one_target_at_once(database_url: str, engine: Engine) -> None:
    """Two replicas (own engines, threads) drain 60 rows for 3 channels: whenever a replica
    holds a row, no other row of its channel is in flight anywhere."""
    add_rows(engine, [f"slack:C{n % 3}" for n in range(60)])
    overlaps: list[tuple[str, int]] = []

    def replica(_: int) -> int:
        own = database.create(database_url)
        sent = 0
        while True:
            with own.begin() as db:
                rows = outbox.claim(db, NOW, LEASE, 3, set())  # nothing busy *here*
            if not rows:
                own.dispose()
                return sent
            with own.begin() as db:
                for row in rows:
                    in_flight = db.scalar(select(func.count()).select_from(DELIVERIES).where(
                        DELIVERIES.c.target == row.target, DELIVERIES.c.status == "sending"))
                    if in_flight != 1:
                        overlaps.append((row.target, in_flight))
                    outbox.mark_sent(db, row.id, NOW, None)
                    sent += 1

    with ThreadPoolExecutor(2) as pool:
        assert sum(pool.map(replica, range(2))) == 60
    assert overlaps == []


def test_a_pacing_gap_in_the_database_holds_the_target_for_every_replica(engine: Engine
                                                                         ) -> None:
    add_rows(engine, ["slack:CA", "slack:CA", "slack:CB"])
    gap = timedelta(seconds=1)
    with engine.begin() as db:  # replica one sends CA's first row and CB's
        first = outbox.claim(db, NOW, LEASE, 10, set())
        assert [row.target for row in first] == ["slack:CA", "slack:CB"]
    with engine.begin() as db:  # replica two, while those are in flight: nothing for it
        assert outbox.claim(db, NOW, LEASE, 10, set()) == []
        assert outbox.next_due(db, NOW) is None  # nothing it could claim, no gap to wait for
    with engine.begin() as db:
        for row in first:
            outbox.mark_sent(db, row.id, NOW, None)
            outbox.pace(db, row.target, NOW + gap)
    with engine.begin() as db:  # replica two again: CA's second row waits out the gap
        assert outbox.claim(db, NOW + gap / 2, LEASE, 10, set()) == []
        assert outbox.next_due(db, NOW + gap / 2) == NOW + gap
        [second] = outbox.claim(db, NOW + gap, LEASE, 10, set())
    assert second.target == "slack:CA"
    with engine.begin() as db:  # a Retry-After lengthens the gap; the upsert keeps one row
        outbox.postpone(db, second.id, "rate limited", NOW + 5 * gap)
        outbox.pace(db, "slack:CA", NOW + 5 * gap)
        assert outbox.claim(db, NOW + 4 * gap, LEASE, 10, set()) == []
        assert outbox.next_due(db, NOW + 4 * gap) == NOW + 5 * gap
        assert [r.id for r in outbox.claim(db, NOW + 5 * gap, LEASE, 10, set())] == [second.id]


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


async def test_replicas_ingesting_the_same_stories_plan_each_delivery_once(
    database_url: str, tmp_path: Path
) -> None:
    """Two replicas store the same 200 stories (as when both poll one feed) for 10 channels
    at once: every story reaches every channel in exactly one delivery, and neither fails."""
    channels = [{"channel": f"C0R{n}"} for n in range(10)]
    config = make_config(tmp_path, database_url,
                         {"slack": {"pacing": "0s", "batch_window": "0s", "routes": channels}})
    replicas = [Database(database_url), Database(database_url)]
    pipelines = [Pipeline(db, config) for db in replicas]
    batches = [json.dumps([story(id=f"r{n}", scored_at=NOW.isoformat())
                           for n in range(start, start + 10)]) for start in range(0, 200, 10)]

    async def feed(pipeline: Pipeline) -> int:
        return sum([len((await pipeline.ingest(parse_batch(batch), "test", NOW)).accepted)
                    for batch in batches])

    stored = await asyncio.gather(*(feed(pipeline) for pipeline in pipelines))
    assert sum(stored) == 200  # each story stored by one replica, found unchanged by the other
    with replicas[0].engine.connect() as conn:
        matches = list(conn.execute(select(MATCHES.c.target, MATCHES.c.delivery_id)))
        carried = dict(conn.execute(select(MATCHES.c.delivery_id, func.count())
                                    .group_by(MATCHES.c.delivery_id)).all())
        deliveries = conn.scalars(select(DELIVERIES.c.id)).all()
    assert len(matches) == 2000 and None not in carried
    assert sorted(carried) == sorted(deliveries)  # no delivery left without its stories
    for db in replicas:
        db.close()


async def test_held_matches_whose_story_was_deleted_by_hand_plan_nothing(
    database_url: str, tmp_path: Path
) -> None:
    """Planning counts pending targets without reading their stories (unless in quiet
    hours); a held match whose story is gone still plans no row, and nothing fails."""
    db = Database(database_url)
    pipeline = Pipeline(db, make_config(tmp_path, database_url, {"slack": {"routes": [
        {"channel": "C0HELD", "batch_window": "10m"}]}}))
    first = await pipeline.ingest(parse_batch(json.dumps(story(id="s1"))), "test", NOW)
    held = await pipeline.ingest(parse_batch(json.dumps(story(id="s2"))), "test", NOW)
    assert (first.planned, held.matched, held.planned) == (1, 1, 0)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM stories WHERE id = 's2'")
    assert await pipeline.flush(NOW + timedelta(minutes=11), close_windows=True) == 0
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(DELIVERIES)) == 1
        assert conn.scalar(select(MATCHES.c.delivery_id).where(MATCHES.c.story_id == "s2")) is None
    db.close()
