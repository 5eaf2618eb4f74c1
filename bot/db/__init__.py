"""Database engine and migrations: SQLite by default, PostgreSQL through DATABASE_URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _urls(database_url: str) -> tuple[URL, URL]:
    """Return (async URL, sync URL) for a plain `sqlite:///…` or `postgresql://…` URL."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite"), url.set(drivername="sqlite")
    if backend in ("postgresql", "postgres"):
        pg = url.set(drivername="postgresql+psycopg")
        return pg, pg
    raise ValueError(f"DATABASE_URL: unsupported database {backend!r} (use sqlite or postgresql)")


def _prepare_sqlite_file(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; synchronous=NORMAL keeps WAL durable across a
    # process crash (what the outbox promises) without an fsync per commit.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
                   "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def connect(database_url: str) -> AsyncEngine:
    """Create the service's async engine."""
    async_url, _ = _urls(database_url)
    _prepare_sqlite_file(async_url)
    if async_url.get_backend_name() == "sqlite":
        # One connection: SQLite has one writer anyway, and sharing it avoids lock errors
        # between our own tasks.
        engine = create_async_engine(async_url, pool_size=1, max_overflow=0, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(async_url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def upgrade(database_url: str) -> None:
    """Apply every Alembic migration up to head."""
    _, sync_url = _urls(database_url)
    _prepare_sqlite_file(sync_url)
    engine = create_engine(sync_url)
    try:
        with engine.begin() as connection:
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
