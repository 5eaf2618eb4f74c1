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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot.db import checkpoints
from bot.db.checkpoints import Checkpointer

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration (a test holds it to Alembic's head). Knowing it lets a command see that a
# database is up to date with one query, without importing Alembic (~0.1 s of every command).
HEAD = "0016"
P = ParamSpec("P")
R = TypeVar("R")


def _url(database_url: str) -> URL:
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return url.set(drivername="sqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    raise ValueError(f"DATABASE_URL: unsupported database {backend!r} (use sqlite or postgresql)")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; synchronous=NORMAL keeps WAL durable across a
    # process crash (what the outbox promises) without an fsync per commit. The page cache
    # stays at SQLite's default (2 MB a connection): a larger one was described here once but
    # never measured against the service's memory bar.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
                   "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _no_waiting(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def create(database_url: str) -> Engine:
    """A synchronous engine for `database_url` (plain `sqlite:///…` or `postgresql://…`)."""
    url = _url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                         connect_args={"connect_timeout": 5})


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
        self._checkpoints: Checkpointer | None = None
        database = self.engine.url.database
        if self._local and database not in (None, "", ":memory:"):  # a file both engines open
            self._here = create(database_url)
            # Never wait for another process's write lock on the loop: fail at once and let
            # the thread wait for it (see `write_short`).
            event.listen(self._here, "connect", _no_waiting)
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

        On SQLite it runs right here, on the event loop: a local read of a millisecond costs
        less than two hops to the database thread and back, each waiting for the GIL while
        the loop serves other requests (measured: `/story` p50 64 → 32 ms with 20 requests in
        flight). PostgreSQL reads still go through the threads: a network round trip, or a
        database that has gone away, must not stall the loop.
        """
        if self._local:
            return self._on_connection(lambda c: work(c, *args, **kwargs))
        return await self.read(work, *args, **kwargs)

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


def _migration_engine(database_url: str) -> Engine:
    """An engine for migrating: on SQLite, transactional DDL and foreign keys off.

    pysqlite commits before each DDL statement by default, so a migration failing halfway
    would leave its first tables behind under the old revision number; BEGIN issued by hand
    keeps the whole upgrade one transaction. Alembic's batch mode on SQLite copies a table and
    drops the old one, which enforced foreign keys refuse; `upgrade` checks them afterwards.
    """
    url = _url(database_url)
    if url.get_backend_name() != "sqlite":
        return create(database_url)
    engine = create_engine(url)

    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we say BEGIN ourselves
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=OFF"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    event.listen(engine, "connect", connect)
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
    return engine


def _alembic() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def revision(database_url: str) -> str | None:
    """The database's schema revision; None when it has no alertbot tables yet."""
    engine = create(database_url)
    try:
        with engine.connect() as connection:
            found = connection.scalar(text("SELECT version_num FROM alembic_version"))
            return None if found is None else str(found)
    except SQLAlchemyError:
        if not _reachable(engine):
            raise  # the database is away: say so, rather than "no tables"
        return None
    finally:
        engine.dispose()


def _reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True


def behind(database_url: str) -> str | None:
    """Why the database's schema is older than this release needs, or None if it is not.

    A revision this release does not know is newer (a later release migrated it): the old
    replicas of a rolling upgrade keep running, since migrations only add.
    """
    current = revision(database_url)
    if current == HEAD:
        return None
    if current is None:
        return "the database has no alertbot tables yet"
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(_alembic()).get_revision(current)
    except CommandError:
        return None
    return f"the database schema is at revision {current}; this release needs {HEAD}"


def upgrade(database_url: str, target: str = "head") -> None:
    """Apply the Alembic migrations up to `target`, all in one transaction."""
    if target == "head" and revision(database_url) == HEAD:
        return  # up to date: no need to load Alembic
    from alembic import command

    engine = _migration_engine(database_url)
    try:
        with engine.begin() as connection:
            cfg = _alembic()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, target)
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:  # rolls the whole upgrade back
                    raise RuntimeError(f"migration broke {len(broken)} foreign key(s)")
    finally:
        engine.dispose()
