"""Two confirmations of one sign-up at the same moment (a double click, or two tabs), posted to
the service's own HTTP app: one subscribes, the other says "already", and neither fails."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bot.readers.signup import confirm_token, expiry
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Desk
from tests.test_signup import NEW, _desk, browser, csrf_of, stored

# Blocked on the subscribers table: the confirmations' writes, each behind its own lookup.
WAITING = """SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'subscribers' AND NOT l.granted"""


@pytest.fixture
async def desk(tmp_path: Path, database_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    """On SQLite, then on a real PostgreSQL."""
    async for made in _desk(tmp_path, database_url, slack, smtp):
        yield made


async def test_two_simultaneous_confirmations_subscribe_once_and_one_says_already(
    desk: Desk, database_url: str,
) -> None:
    token = confirm_token(desk.service.dispatcher.key, NEW, expiry(desk.clock()))
    path = f"/signup/confirm/{token}"

    def confirm(client: httpx.AsyncClient, page: httpx.Response) -> asyncio.Task[httpx.Response]:
        form = {"csrf": csrf_of(page), "mode": "daily"}
        return asyncio.create_task(client.post(path, data=form))

    async with browser(desk.service) as first, browser(desk.service) as second:
        pages = [await client.get(path) for client in (first, second)]
        if database_url.startswith("postgresql"):
            # PostgreSQL runs the two transactions at once. Holding a SHARE lock on the table
            # lets both look the address up (and find nobody) but stops both at their first
            # write, so the second insert meets the first's row: the IntegrityError path,
            # every run, not only when the timing happens to fall so.
            with psycopg.connect(database_url) as holder:
                holder.execute("LOCK TABLE subscribers IN SHARE MODE")
                tasks = [confirm(first, pages[0]), confirm(second, pages[1])]
                await _until_blocked(database_url, tasks, 2)
                holder.rollback()
        else:  # SQLite: one writer thread takes them in turn; the second finds the first
            tasks = [confirm(first, pages[0]), confirm(second, pages[1])]
        answers = await asyncio.gather(*tasks)
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    said = sorted(re.findall(r"You are subscribed|You were already subscribed", a.text)[0]
                  for a in answers)
    assert said == ["You are subscribed", "You were already subscribed"]
    reader = await stored(desk)
    assert reader is not None and reader.mode == "daily"
    count = await desk.service.db.read(
        lambda db: db.exec_driver_sql("SELECT count(*) FROM subscribers").scalar())
    assert count == 1


async def _until_blocked(url: str, tasks: list[asyncio.Task[httpx.Response]], count: int
                         ) -> None:
    """Until `count` transactions wait on the subscribers table; the posts run meanwhile."""
    with psycopg.connect(url, autocommit=True) as watcher:
        deadline = time.monotonic() + 10
        while (watcher.execute(WAITING).fetchone() or (0,))[0] < count:
            done = [t for t in tasks if t.done()]
            if done:  # answered without waiting for the lock: say what it answered
                pytest.fail(f"a confirmation did not wait: {done[0].result().text[:300]}")
            assert time.monotonic() < deadline, "the confirmations never reached their write"
            await asyncio.sleep(0.01)  # the posts' handlers and database threads run meanwhile
