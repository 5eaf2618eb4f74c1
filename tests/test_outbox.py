"""The durable outbox and the story archive, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import archive, outbox
from bot import db as database
from bot.db.schema import MATCHES, VERSIONS
from bot.pipeline import Pipeline
from bot.stories import parse_batch
from tests.conftest import make_config, story

NOW = datetime.now(UTC).replace(microsecond=0)
LEASE = timedelta(seconds=30)


async def add_rows(url: str, targets: list[str]) -> None:
    engine = database.connect(url)
    async with engine.begin() as db:
        for n, target in enumerate(targets):
            await outbox.enqueue_one(db, "slack", target, "test", f"k{n}", "why", NOW)
    await engine.dispose()


async def test_each_row_is_claimed_by_exactly_one_worker(database_url: str) -> None:
    await add_rows(database_url, [f"slack:C{n:04d}" for n in range(40)])
    engines = [database.connect(database_url) for _ in range(2)]

    async def worker(engine: object) -> list[int]:
        claimed: list[int] = []
        while True:
            async with engine.begin() as db:  # type: ignore[attr-defined]
                rows = await outbox.claim(db, NOW, LEASE, 3, set())
            if not rows:
                return claimed
            claimed += [row.id for row in rows]

    first, second = await asyncio.gather(*(worker(e) for e in engines))
    assert sorted(first + second) == list(range(1, 41))
    assert not set(first) & set(second)
    for engine in engines:
        await engine.dispose()


async def test_a_claim_takes_one_row_per_target_and_skips_busy_targets(database_url: str
                                                                       ) -> None:
    await add_rows(database_url, ["slack:CA", "slack:CA", "slack:CB", "slack:CC"])
    engine = database.connect(database_url)
    async with engine.begin() as db:
        rows = await outbox.claim(db, NOW, LEASE, 10, busy={"slack:CC"})
    assert sorted((row.id, row.target) for row in rows) == [(1, "slack:CA"), (3, "slack:CB")]
    assert {row.status for row in rows} == {"sending"}
    await engine.dispose()


async def test_a_row_left_sending_returns_to_pending_after_its_lease(database_url: str) -> None:
    await add_rows(database_url, ["slack:CA"])
    engine = database.connect(database_url)
    async with engine.begin() as db:
        [row] = await outbox.claim(db, NOW, LEASE, 1, set())
        assert await outbox.recover_leases(db, NOW + LEASE - timedelta(seconds=1)) == 0
        assert await outbox.recover_leases(db, NOW + LEASE + timedelta(seconds=1)) == 1
        [again] = await outbox.claim(db, NOW + LEASE + timedelta(seconds=1), LEASE, 1, set())
    assert again.id == row.id and again.attempts == 2
    await engine.dispose()


async def test_a_dedupe_key_is_written_once(database_url: str) -> None:
    engine = database.connect(database_url)
    with pytest.raises(IntegrityError):
        async with engine.begin() as db:
            await outbox.enqueue_one(db, "slack", "slack:CA", "test", "same", "why", NOW)
            await outbox.enqueue_one(db, "slack", "slack:CA", "test", "same", "why", NOW)
    await engine.dispose()


async def test_failed_rows_wait_for_their_backoff_and_dead_rows_can_be_retried(
    database_url: str,
) -> None:
    await add_rows(database_url, ["slack:CA"])
    engine = database.connect(database_url)
    async with engine.begin() as db:
        [row] = await outbox.claim(db, NOW, LEASE, 1, set())
        await outbox.mark_failed(db, row.id, "boom", dead=False, retry_at=NOW + LEASE)
        assert await outbox.claim(db, NOW, LEASE, 1, set()) == []
        [row] = await outbox.claim(db, NOW + LEASE, LEASE, 1, set())
        await outbox.mark_failed(db, row.id, "SMTP 550 no such user", dead=True, retry_at=NOW)
        assert await outbox.claim(db, NOW + 2 * LEASE, LEASE, 1, set()) == []
        [dead] = await outbox.listing(db, "dead")
        assert dead.last_error == "SMTP 550 no such user"
        assert await outbox.retry(db, NOW, None) == 1
        assert [r.id for r in await outbox.claim(db, NOW, LEASE, 1, set())] == [row.id]
    await engine.dispose()


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng, base, cap = random.Random(7), timedelta(seconds=2), timedelta(seconds=60)
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (10, 60)]:
        delay = outbox.backoff(attempt, base, cap, rng).total_seconds()
        assert ceiling / 2 <= delay <= ceiling


async def test_reingesting_the_same_stories_stores_and_alerts_nothing_new(
    database_url: str, tmp_path: Path
) -> None:
    config = make_config(tmp_path, database_url)
    engine = database.connect(database_url)
    pipeline = Pipeline(engine, config)
    payload = json.dumps([story(id=f"s{n}", scored_at=NOW.isoformat()) for n in range(5)])
    first = await pipeline.ingest(parse_batch(payload), "test", NOW)
    again = await pipeline.ingest(parse_batch(payload), "test", NOW)
    assert (len(first.accepted), first.matched) == (5, 5)
    assert (again.accepted, len(again.unchanged), again.matched) == ([], 5, 0)
    async with engine.connect() as db:
        assert len(list(await db.execute(select(VERSIONS)))) == 5
        assert len(list(await db.execute(select(MATCHES)))) == 5
        stored = await archive.load(db, ["s0"])
    assert stored["s0"].scored_at == NOW
    await engine.dispose()
