"""A push stored on the event loop meets another process's write lock.

On SQLite a push of up to `LOOP_INGEST` stories is stored on the loop itself, never waiting
there for a lock: if another process (`alertbot ingest`, a delivery child) holds the write
lock, the transaction is rolled back and waits on the database thread. The loop keeps
serving meanwhile, and the push is stored and planned once when the lock goes. What it
planned is logged once, after its transaction committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from bot.db.schema import DELIVERIES, STORIES
from bot.pipeline import LOOP_INGEST
from bot.service import Service
from tests.conftest import story
from tests.fakes import FakeSlack
from tests.harness import ROUTES, desk_config


async def test_a_push_waits_off_the_loop_for_another_writer_and_is_stored_once(
    tmp_path: Path, sqlite_url: str, slack: FakeSlack,
) -> None:
    service = Service(desk_config(tmp_path, sqlite_url, slack, 25,
                                  slack={"pacing": "0s", "batch_window": "0s",
                                         "routes": ROUTES}))
    count = 50
    assert count <= LOOP_INGEST  # the size stored on the loop when nothing is in the way
    body = json.dumps([story(id=f"locked-{n}", title=f"Title of locked-{n}")
                       for n in range(count)]).encode()
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's write lock, as SQLite sees it
        on_loop = service.db._here  # the loop's own engine (Database.write_short)
        assert on_loop is not None
        rolled_back: list[bool] = []
        event.listen(on_loop, "rollback", lambda connection: rolled_back.append(True))
        pushed = asyncio.create_task(service.push(body))
        started = time.monotonic()
        await asyncio.sleep(0.3)  # the loop runs meanwhile: this returns on time
        assert time.monotonic() - started < 2
        assert not pushed.done()  # waiting for the lock, on the database thread
        assert rolled_back  # after trying the loop first, and failing at once there
        other.execute("ROLLBACK")
        report = await asyncio.wait_for(pushed, 10)
        assert len(report["accepted"]) == count and report["planned"] >= 1
        stored = await service.db.read(
            lambda db: db.scalar(select(func.count()).select_from(STORIES)))
        rows = await service.db.read(
            lambda db: db.scalar(select(func.count()).select_from(DELIVERIES)))
        assert stored == count
        assert rows == report["planned"]  # planned once, though tried on the loop first
    finally:
        other.close()
        await service.close()


@pytest.mark.parametrize("count", [1, LOOP_INGEST + 1], ids=["on the loop", "on the thread"])
async def test_what_a_push_planned_is_logged_once_after_its_commit(
    tmp_path: Path, sqlite_url: str, slack: FakeSlack, caplog: pytest.LogCaptureFixture,
    count: int,
) -> None:
    """The "planned" and "flagged" lines say what was stored: logged inside the transaction,
    a rollback (or a retry on the thread after losing the lock) would leave them saying what
    was not, or saying it twice. A big push is stored on the database thread, and its lines
    are written off the loop too."""
    service = Service(desk_config(tmp_path, sqlite_url, slack, 25,
                                  slack={"pacing": "0s", "batch_window": "0s",
                                         "routes": ROUTES}))
    happened: list[str] = []
    for engine in (service.db._here, service.db.engine):  # the loop's, the thread's
        assert engine is not None
        event.listen(engine, "commit", lambda connection: happened.append("commit"))
    caplog.set_level(logging.INFO, logger="bot")

    class Order(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith(("planned ", "story ")):
                happened.append(message.split()[0])

    order = Order()
    logging.getLogger("bot").addHandler(order)
    try:
        body = json.dumps([story(id=f"after-commit-{n}", title=f"Logged after commit {n}",
                                 sources=[{"outlet": "Reuters", "url": "https://a.example/1"},
                                          {"outlet": "AP", "url": "https://b.example/2"}],
                                 verified_by=5) for n in range(count)]).encode()
        report = await service.push(body)
    finally:
        logging.getLogger("bot").removeHandler(order)
        await service.close()
    assert report["planned"] >= 1
    first_commit = happened.index("commit")
    logged = happened[first_commit + 1:]
    assert happened[:first_commit] == []  # nothing said before the transaction committed
    assert logged.count("planned") == report["planned"]
    assert logged.count("story") == count  # "story … flagged": verified_by 5, two outlets
    assert logged.count("commit") == 0  # one transaction
