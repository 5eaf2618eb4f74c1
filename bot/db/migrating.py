"""The schema: its revision, and Alembic's migrations up to this release's (`HEAD`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from bot.db.engines import create, sqlalchemy_url

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration (a test holds it to Alembic's head). Knowing it lets a command see that a
# database is up to date with one query, without importing Alembic (~0.1 s of every command).
HEAD = "0016"


def _migration_engine(database_url: str) -> Engine:
    """An engine for migrating: on SQLite, transactional DDL and foreign keys off.

    pysqlite commits before each DDL statement by default, so a migration failing halfway
    would leave its first tables behind under the old revision number; BEGIN issued by hand
    keeps the whole upgrade one transaction. Alembic's batch mode on SQLite copies a table and
    drops the old one, which enforced foreign keys refuse; `upgrade` checks them afterwards.
    """
    url = sqlalchemy_url(database_url)
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
