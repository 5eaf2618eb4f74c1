"""One side of the digest race in tests/test_digest_windows.py, as its own process.

    python -m tests.digest_race setup|ingest|plan DATABASE_URL SECONDS

`ingest` stores batches of stories (new ones, some not action items, and re-scores of earlier
ones that stay action items) through the real pipeline until SECONDS have passed. `plan` plans
every reader's digest over and over, each time for a later local date (time is an argument:
one simulated day every 50 ms of real time), as the digest job would on successive mornings.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from bot.db import Database
from bot.outbox.daily import plan_chunk
from bot.pipeline import Pipeline
from bot.readers import subscribers
from bot.settings import Config, DeskConfig, Settings
from bot.stories.parsing import parse_batch
from tests.conftest import story

READERS = {"all@desk.example": (), "launch@desk.example": ("launch",)}
EPOCH = datetime(2030, 1, 1, 7, 0, tzinfo=UTC)  # simulated mornings start here


def config(url: str) -> Config:
    return Config(Settings(database_url=url, secret_key="race"), DeskConfig(), None)


def setup(db: Database) -> None:
    async def work() -> None:
        for address, topics in READERS.items():
            reader = subscribers.validate(address, "daily", "UTC", topics, "07:00")
            await db.write(subscribers.add, reader, datetime.now(UTC))
        # As if each had a digest before anything was stored: every story is "since" then.
        await db.write(lambda c: c.exec_driver_sql("UPDATE subscribers SET digest_seq = 0"))
    asyncio.run(work())


def ingest(db: Database, url: str, seconds: float) -> None:
    pipeline = Pipeline(db, config(url))
    chance = random.Random(7)
    deadline = time.monotonic() + seconds

    async def work() -> None:
        topics: list[str] = []
        while time.monotonic() < deadline:
            batch = []
            for _ in range(5):
                topics.append(chance.choice(["launch", "budget"]))
                batch.append(story(id=f"race-{len(topics)}", impact=chance.choice([5, 8, 9]),
                                   topics=[topics[-1]], version=1))
            if len(topics) > 20:  # a re-score of an earlier story, action item or not
                n = chance.randrange(1, len(topics) - 10)
                batch.append(story(id=f"race-{n}", impact=10, topics=[topics[n - 1]],
                                   version=2))
            parsed = parse_batch(json.dumps(batch))
            await pipeline.ingest(parsed, "race", datetime.now(UTC))
    asyncio.run(work())


def plan(db: Database, seconds: float) -> None:
    desk = DeskConfig()
    deadline = time.monotonic() + seconds

    async def work() -> None:
        while True:
            # The two planners share the simulated calendar, so at times both plan one date.
            day = int((time.time() % 10**6) * 20)
            await db.write(plan_chunk, desk, EPOCH + timedelta(days=day % 2_000_000), True)
            if time.monotonic() >= deadline:
                break
    asyncio.run(work())


def main(role: str, url: str, seconds: float) -> None:
    db = Database(url)
    try:
        if role == "setup":
            setup(db)
        elif role == "ingest":
            ingest(db, url, seconds)
        else:
            plan(db, seconds)
    finally:
        db.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
