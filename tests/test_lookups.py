"""SQLite look-ups run on the event loop while their pages are in memory, and on reader
threads for a while once one has waited for the disk (bot/db/lookups.py).

The database file's pages are evicted from the page cache (posix_fadvise), so the first
look-up really reads from the disk and the kernel counts it. How long a disk read takes
depends on the machine, so the test lowers the "waited" threshold to zero; what it does not
fake is the read and its count.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from bot.db import Database, lookups
from bot.db.lookups import DiskReads, Reading

ROWS = 2000


async def test_a_lookup_that_read_from_the_disk_sends_the_next_ones_to_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not hasattr(resource, "RUSAGE_THREAD"):
        pytest.skip("this platform does not count a thread's disk reads")
    path = tmp_path / "alertbot.db"
    _fill(path)
    _evict(path)
    monkeypatch.setattr(lookups, "SLOW", 0.0)
    clock = [1000.0]
    db = Database(f"sqlite:///{path}")
    db.disk_reads.clock = lambda: clock[0]
    ran_on: list[str] = []

    def everything(connection: Connection) -> int:
        ran_on.append(threading.current_thread().name)
        return int(connection.execute(text("SELECT sum(length(body)) FROM filler")).scalar_one())

    try:
        assert await db.lookup(everything) == ROWS * 2000  # read from the disk, on the loop
        if db.disk_reads.last is None:
            pytest.skip("no blocks were read after eviction: the file system keeps no page "
                        "cache to evict (tmpfs)")
        assert ran_on == [threading.main_thread().name]
        assert await db.lookup(everything) == ROWS * 2000
        assert ran_on[1].startswith("lookup")  # a reader thread, not the loop
        clock[0] += lookups.WINDOW + 0.1  # no look-up has waited for the disk since
        assert await db.lookup(everything) == ROWS * 2000
        assert ran_on[2] == threading.main_thread().name
    finally:
        db.close()


def test_a_wait_counts_only_when_blocks_were_read_and_it_took_long() -> None:
    reads = DiskReads(clock=lambda: 50.0)
    start = Reading(blocks=10, wall=1.0, cpu=0.5)
    reads.seen(start, Reading(blocks=10, wall=1.5, cpu=0.5))  # waited, but not for the disk
    reads.seen(start, Reading(blocks=90, wall=1.001, cpu=0.5005))  # read, from a fast disk
    assert reads.on_loop()
    reads.seen(start, Reading(blocks=90, wall=1.02, cpu=0.501))  # read, and waited 19 ms
    assert reads.last == 50.0
    assert not reads.on_loop()


def _fill(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE filler (body BLOB)")
    raw.executemany("INSERT INTO filler VALUES (randomblob(2000))", [()] * ROWS)
    raw.commit()
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file, none in the WAL
    raw.close()


def _evict(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # only clean pages leave the page cache
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)
