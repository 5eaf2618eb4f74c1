"""Database access: SQLite by default, PostgreSQL through DATABASE_URL.

Repository functions (`archive`, `outbox`, `subscribers`) are plain synchronous SQLAlchemy that
take a `Connection`. The event loop reaches them through `Database.write`/`read`, which run one
whole transaction on a database thread: one thread hop per transaction, where an async driver
pays several per statement (measured: 0.5 ms per statement with aiosqlite, 0.02 ms in-thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import OperationalError

from bot.db import checkpoints
from bot.db.checkpoints import Checkpointer
from bot.db.engines import create, no_waiting
from bot.db.lookups import READERS, DiskReads, reading
from bot.db.migrating import HEAD, MIGRATIONS, behind, revision, upgrade

__all__ = ["CLAIM_LOCK", "DIGEST_LOCK", "HEAD", "MIGRATIONS", "PLAN_LOCK", "Database", "behind",
           "create", "revision", "take_turns", "upgrade"]
P = ParamSpec("P")
R = TypeVar("R")


class Database:
    """The engine plus the thread(s) that run transactions for the event loop."""

    def __init__(self, database_url: str) -> None:
        self.engine = create(database_url)
        # SQLite has one writer: one thread serialises our own transactions and avoids lock
        # errors between them. PostgreSQL takes several at once.
        self._local = self.engine.dialect.name == "sqlite"
        workers = 1 if self._local else 8
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")
        # Transactions handed to the thread and not yet finished: while there are none, this
        # process writes nothing, so a short write may run on the loop (`write_short`).
        self._in_flight = 0
        self._here: Engine | None = None
        self.disk_reads = DiskReads()  # where SQLite look-ups run (lookups.py)
        self._readers: ThreadPoolExecutor | None = None
        self._checkpoints: Checkpointer | None = None
        database = self.engine.url.database
        if self._local and database not in (None, "", ":memory:"):  # a file both engines open
            self._here = create(database_url)
            # Never wait for another process's write lock on the loop: fail at once and let
            # the thread wait for it (see `write_short`).
            event.listen(self._here, "connect", no_waiting)
            # No commit of ours copies the WAL into the file: a thread does (checkpoints.py).
            for engine in (self.engine, self._here):
                event.listen(engine, "connect", checkpoints.no_autocheckpoint)
            self._checkpoints = Checkpointer(self.engine, database)
            self._checkpoints.start()

    async def write(self, work: Callable[Concatenate[Connection, P], R],
                    *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `work(connection, …)` in one transaction, committed when it returns."""
        return await self._run(self._in_transaction, lambda c: work(c, *args, **kwargs))

    async def write_short(self, work: Callable[Concatenate[Connection, P], R],
                          *args: P.args, **kwargs: P.kwargs) -> R:
        """`write` for a short transaction on the push → Slack path (a claim, a settle, a
        push's stories: see `Pipeline._store`).

        On SQLite, while the database thread has nothing to do, it runs right here on the
        event loop: two hops to the thread and back cost more than a claim of a millisecond,
        and each hop waits for the GIL while the other thread computes (up to the 5 ms switch
        interval). If another process holds the write lock, it fails at once (no busy wait on
        the loop), is rolled back, and goes to the thread to wait there like any write. With
        the thread busy (ingest), it queues behind it as before, keeping our own writes one
        at a time. PostgreSQL always uses the threads (a network round trip).
        """
        if self._here is not None and self._in_flight == 0:
            try:
                with self._here.begin() as connection:
                    return work(connection, *args, **kwargs)
            except OperationalError as exc:
                if "locked" not in str(exc.orig):
                    raise
        return await self.write(work, *args, **kwargs)

    async def read(self, work: Callable[Concatenate[Connection, P], R],
                   *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `work(connection, …)` for reading; nothing is committed."""
        return await self._run(self._on_connection, lambda c: work(c, *args, **kwargs))

    async def lookup(self, work: Callable[Concatenate[Connection, P], R],
                     *args: P.args, **kwargs: P.kwargs) -> R:
        """A short read for a request someone is waiting on (a slash command).

        On SQLite it runs right here, on the event loop, while look-ups find their pages in
        memory: a local read of a millisecond costs less than two hops to a thread and back,
        each waiting for the GIL while the loop serves other requests (measured: `/story` p50
        64 → 32 ms with 20 requests in flight). While most of them wait for the disk, they
        run on reader threads instead, waiting side by side rather than holding up the loop
        (lookups.py). PostgreSQL reads always go through the threads: a network
        round trip, or a database that has gone away, must not stall the loop.
        """
        if not self._local:
            return await self.read(work, *args, **kwargs)
        if self.disk_reads.on_loop():
            return self._measured(lambda c: work(c, *args, **kwargs), True)
        if self._readers is None:
            self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="lookup")
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, self._measured, lambda c: work(c, *args, **kwargs), False)

    def _measured(self, work: Callable[[Connection], R], on_loop: bool) -> R:
        """`work` on a connection, telling `disk_reads` how long it waited for the disk."""
        before = reading()
        try:
            return self._on_connection(work)
        finally:
            self.disk_reads.seen(before, reading(), on_loop)

    async def _run(self, runner: Callable[[Callable[[Connection], R]], R],
                   work: Callable[[Connection], R]) -> R:
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, runner, work)
        finally:
            self._in_flight -= 1

    def _in_transaction(self, work: Callable[[Connection], R]) -> R:
        with self.engine.begin() as connection:
            return work(connection)

    def _on_connection(self, work: Callable[[Connection], R]) -> R:
        with self.engine.connect() as connection:
            return work(connection)

    async def ping(self) -> None:
        """Raise unless the database answers."""
        await self.read(lambda connection: connection.execute(text("SELECT 1")))

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self._threads.shutdown(wait=True)
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        self.engine.dispose()
        if self._here is not None:
            self._here.dispose()


# Keys of the PostgreSQL advisory locks that make replicas take turns (any constant bigints).
PLAN_LOCK = 0x616C6572_74000001  # storing stories and grouping matches into deliveries
CLAIM_LOCK = 0x616C6572_74000002  # claiming outbox rows, so pacing holds across replicas
DIGEST_LOCK = 0x616C6572_74000003  # planning daily digests: each reads and moves readers' marks


def take_turns(connection: Connection, lock: int) -> None:
    """Let this transaction run on alone from here on: replicas and other processes wait.

    PostgreSQL: a transaction-level advisory lock on `lock`, released by commit or rollback,
    even when the process dies, so no replica holds it for good. SQLite: a write that changes
    nothing, so that the transaction takes the database's one write lock now (waiting up to
    busy_timeout for another process's, such as `alertbot ingest` beside `alertbot run`)
    rather than at its first real write, after reads another writer may have outdated.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_ADVISORY_LOCK, {"key": lock})
    else:
        connection.execute(_WRITE_LOCK)


# Built once: every ingest and claim takes its turn (measured: 8.8 against 14.1 µs a call).
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_WRITE_LOCK = text("DELETE FROM pacing WHERE 0")
