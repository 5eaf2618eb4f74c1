"""Engines: SQLite (WAL, its pragmas) or PostgreSQL (psycopg), from DATABASE_URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from bot.db.lookups import READERS


def sqlalchemy_url(database_url: str) -> URL:
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


def no_waiting(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def create(database_url: str) -> Engine:
    """A synchronous engine for `database_url` (plain `sqlite:///…` or `postgresql://…`)."""
    url = sqlalchemy_url(database_url)
    if url.get_backend_name() == "sqlite":
        # A file's pool keeps five connections (the loop, the database thread, the
        # checkpoints, two to spare); reader threads (lookups.py) take up to one more each
        # while look-ups read from the disk, closed when given back past those five: each
        # holds a page cache of its own (up to 2 MB), which the end of a cold spell would
        # otherwise leave in memory. An in-memory database has a pool of its own kind.
        pool = ({} if url.database in (None, "", ":memory:")
                else {"pool_size": 5, "max_overflow": READERS + 5})
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True,
                         connect_args={"connect_timeout": 5})
