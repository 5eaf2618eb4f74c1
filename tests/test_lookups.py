"""SQLite look-ups run on the event loop while their pages are in memory, and on reader
threads while they keep waiting for the disk (bot/db/lookups.py).

The database file's pages are evicted from the page cache (posix_fadvise), so a look-up
really reads from the disk and the kernel counts it. How long a disk read takes
depends on the machine, so the test lowers the "waited" threshold to zero; what it does not
fake is the read and its count.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from bot.db import Database, lookups
from bot.db.lookups import DiskReads, Reading

ROWS = 4000  # 8 MB: more than the connection's own page cache holds


async def test_lookups_go_to_threads_while_they_wait_for_the_disk_and_come_back(
    disk_folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    if not hasattr(resource, "RUSAGE_THREAD"):
        pytest.skip("this platform does not count a thread's disk reads")
    path = disk_folder / "alertbot.db"
    _fill(path)
    monkeypatch.setattr(lookups, "SLOW", 0.0)
    monkeypatch.setattr(lookups, "RECENT", 4)
    monkeypatch.setattr(lookups, "SLOWS", 2)
    monkeypatch.setattr(lookups, "STAY", 4)
    caplog.set_level(logging.INFO, logger="bot.db.lookups")
    db = Database(f"sqlite:///{path}")
    ran_on: list[str] = []

    def everything(connection: Connection) -> int:
        ran_on.append(threading.current_thread().name)
        return int(connection.execute(text("SELECT sum(length(body)) FROM filler")).scalar_one())

    async def lookup(cold: bool) -> None:
        if cold:
            _evict(path)
        assert await db.lookup(everything) == ROWS * 2000

    try:
        await lookup(cold=True)
        if not any(db.disk_reads.slow):
            pytest.skip("no blocks were read after eviction: the file system keeps no page "
                        "cache to evict (tmpfs)")
        await lookup(cold=True)  # two of the last four read from the disk: threads from now
        for cold in (True, False, False, False):  # four on the threads, cold or not
            await lookup(cold)
        await lookup(cold=False)  # back on the loop, judged afresh
    finally:
        db.close()
    loop = threading.main_thread().name
    assert ran_on[:2] == [loop, loop]
    assert all(name.startswith("lookup") for name in ran_on[2:6]), ran_on
    assert ran_on[6:] == [loop]
    assert list(db.disk_reads.slow) == [False]
    assert [r.getMessage() for r in caplog.records] == [  # what an operator sees of it
        "look-ups on reader threads: 2 of the last 2 waited for the disk",
        "look-ups back on the event loop after 4 on reader threads, to see whether they "
        "still wait for the disk"]


def test_only_lookups_on_the_loop_are_judged_and_the_threads_hand_back_after_a_while() -> None:
    reads = DiskReads()
    start = Reading(blocks=10, wall=1.0, cpu=0.5)
    waited_for_the_gil = Reading(blocks=10, wall=1.5, cpu=0.5)
    read_from_a_fast_disk = Reading(blocks=90, wall=1.001, cpu=0.5005)
    read_and_waited = Reading(blocks=90, wall=1.02, cpu=0.501)  # 19 ms
    for _ in range(lookups.RECENT):
        reads.seen(start, waited_for_the_gil, on_loop=True)
        reads.seen(start, read_from_a_fast_disk, on_loop=True)
    assert reads.on_loop() and not any(reads.slow)
    reads.seen(start, read_and_waited, on_loop=False)  # one from before they came back
    assert not any(reads.slow)
    for _ in range(lookups.SLOWS):
        assert reads.on_loop()
        reads.seen(start, read_and_waited, on_loop=True)
    assert not reads.on_loop()
    reads.seen(start, read_and_waited, on_loop=True)  # started on the loop just before
    for _ in range(lookups.STAY - 1):  # however slow they are there (the GIL's waits too)
        reads.seen(start, read_and_waited, on_loop=False)
        assert not reads.on_loop()
    reads.seen(start, read_and_waited, on_loop=False)
    assert reads.on_loop() and not reads.slow  # judged afresh


async def test_an_in_memory_database_still_answers_lookups() -> None:
    db = Database("sqlite://")
    try:
        assert await db.lookup(lambda c: c.execute(text("SELECT 41 + 1")).scalar_one()) == 42
    finally:
        db.close()


@pytest.fixture
def disk_folder() -> Iterator[Path]:
    """A folder on the disk the checkout is on: /tmp may be a tmpfs, whose pages cannot be
    evicted, so nothing would be read from a disk."""
    var = Path(__file__).resolve().parent.parent / "var"
    var.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="test-lookups-", dir=var))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


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
