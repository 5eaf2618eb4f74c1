"""SQLite's WAL is copied into the database file by a thread of its own, never by a commit.

A commit that checkpoints copies and syncs ~4 MB (~5 ms here); commits run on the event loop,
so it landed on an alert's path now and then (bot/db/checkpoints.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from bot import db as database
from bot.db import Database, checkpoints


async def test_the_wal_is_checkpointed_beside_the_loop_and_no_commit_does_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checkpoints, "EVERY", 0.05)
    monkeypatch.setattr(checkpoints, "PAGES", 10**9)  # the thread looks, and waits for now
    path = tmp_path / "alertbot.db"
    url = f"sqlite:///{path}"
    database.upgrade(url)
    db = Database(url)
    try:
        await db.write(lambda c: c.execute(text("CREATE TABLE filler (blob BLOB)")))
        size_before = _size(path)
        # ~1,500 pages in 12 commits, on the loop (write_short) and on the thread (write):
        # past SQLite's own 1,000, where one of these commits would have checkpointed.
        for n in range(12):
            write = db.write_short if n % 2 else db.write
            await write(lambda c: c.execute(text(
                "INSERT INTO filler VALUES (randomblob(500000))")))
        assert _size(Path(f"{path}-wal")) > 1000 * checkpoints.FRAME
        assert _size(path) == size_before  # no commit copied a page into the file
        assert _count(path) == 12  # another connection reads every row meanwhile

        monkeypatch.setattr(checkpoints, "PAGES", 100)
        checkpointer = db._checkpoints
        assert checkpointer is not None
        assert await asyncio.to_thread(checkpointer.checkpointed.wait, 10)
        assert _size(path) > size_before + 12 * 500_000  # the pages reached the file
    finally:
        db.close()
    assert not checkpointer._thread.is_alive()  # stopped with the database


def _size(path: Path) -> int:
    return path.stat().st_size


def _count(path: Path) -> int:
    raw = sqlite3.connect(path)
    try:
        return int(raw.execute("SELECT count(*) FROM filler").fetchone()[0])
    finally:
        raw.close()
