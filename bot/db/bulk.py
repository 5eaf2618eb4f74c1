"""Bulk inserts through the driver's own `executemany`, for the tables ingest fills.

SQLAlchemy Core runs every value of every row through its type processing (parameter
objects, bind processors, the `UTCDateTime` decorator): for a file of 10,000 stories and their
~15,000 matches that was about a third of the time spent storing them. `insert` turns the rows
into plain tuples itself, converting only the `UTCDateTime` columns, and hands them to the
driver in one `executemany`: the same transaction, the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table

from bot.db.schema import UTCDateTime


def stamper(db: Connection) -> Callable[[datetime | None], Any]:
    """What `UTCDateTime` binds for an aware datetime on this database: SQLAlchemy's SQLite
    text form (always with microseconds, so stored stamps sort and compare as text), or a
    naive UTC datetime for PostgreSQL's `timestamp`."""
    sqlite = db.dialect.name == "sqlite"
    seen: dict[datetime, Any] = {}  # rows of one chunk share `now`

    def stamp(value: datetime | None) -> Any:
        if value is None:
            return None
        known = seen.get(value)
        if known is not None:
            return known
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        utc = value.astimezone(UTC).replace(tzinfo=None)
        seen[value] = stored = utc.isoformat(" ", "microseconds") if sqlite else utc
        return stored

    return stamp


def insert(db: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` into `table` in one `executemany`. Every row has the first row's keys in
    the same order (rows built by one function); a key that is not a column fails by name."""
    if rows:
        insert_values(db, table, list(rows[0]), _tuples(db, table, rows))


def insert_new(db: Connection, table: Table, rows: Sequence[Mapping[str, Any]], unique: str
               ) -> dict[Any, int]:
    """Insert the `rows` whose `unique` column's value is not in `table` yet; return the new
    rows' ids by that value. One statement per NEW_ROWS rows (`INSERT … ON CONFLICT DO
    NOTHING RETURNING`, SQLite ≥ 3.35 and PostgreSQL), where looking the values up before
    and the ids after took two more on every ingest's path."""
    if not rows:
        return {}
    columns = list(rows[0])
    table.c[unique]  # a KeyError naming the column
    values = _tuples(db, table, rows)
    mark = "?" if db.dialect.paramstyle == "qmark" else "%s"
    one = f"({', '.join(mark for _ in columns)})"
    made: dict[Any, int] = {}
    for start in range(0, len(values), NEW_ROWS):
        part = values[start : start + NEW_ROWS]
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
               f"{', '.join(one for _ in part)} ON CONFLICT ({unique}) DO NOTHING "
               f"RETURNING {unique}, id")
        flat = tuple(value for row in part for value in row)
        made.update({row[0]: int(row[1]) for row in db.exec_driver_sql(sql, flat)})
    return made


NEW_ROWS = 500  # rows per `insert_new` statement: 500 × 9 values, under every driver's limit


def _tuples(db: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
            ) -> list[tuple[Any, ...]]:
    """`rows` as tuples in the first row's key order, `UTCDateTime` columns stamped."""
    if any(len(row) != len(rows[0]) for row in rows):
        raise ValueError(f"rows for {table.name} do not all have the same columns")
    columns = list(rows[0])
    stamp = stamper(db)
    stamped = [n for n, name in enumerate(columns) if isinstance(table.c[name].type, UTCDateTime)]
    values: list[tuple[Any, ...]] = []
    for row in rows:
        listed = list(row.values())
        for n in stamped:
            listed[n] = stamp(listed[n])
        values.append(tuple(listed))  # what SQLAlchemy passes through as positional rows
    return values


def insert_values(db: Connection, table: Table, columns: Sequence[str],
                  values: Sequence[tuple[Any, ...]]) -> None:
    """`insert` for rows already made as tuples in `columns`' order, their times converted
    with `stamper` by the caller: no dict per row to take apart. A name that is not a
    column fails by name."""
    for name in columns:
        table.c[name]  # a KeyError naming the column, before any SQL runs
    if not values:
        return
    mark = "?" if db.dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join(mark for _ in columns)})")
    db.exec_driver_sql(sql, list(values))
