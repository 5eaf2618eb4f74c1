"""SQLite's WAL moved into the database file beside the event loop, not in a commit on it.

SQLite checkpoints by itself in the commit that takes the WAL past 1,000 pages: that commit
copies the pages into the database file and syncs it (synchronous=NORMAL syncs at
checkpoints), ~5 ms here. Commits run on the event loop (`Database.write_short`), so one
alert in ~50 paid it, and it was most of the one-at-a-time p99 (docs/performance.md). This
process's connections turn that off; a thread of its own looks at the WAL's size each
`EVERY` seconds and, past `PAGES` pages, runs a PASSIVE checkpoint on a connection of its own:
writers and readers go on meanwhile, and the GIL is free while SQLite copies and syncs.
Other processes on the same file (`alertbot ingest`) keep SQLite's own checkpoints.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)
PAGES = 1000  # SQLite's own threshold (wal_autocheckpoint's default)
EVERY = 0.5  # seconds between looks at the WAL's size
FRAME = 4096 + 24  # one WAL frame: a page (4 KiB, SQLite's default) and its header


def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


class Checkpointer:
    """Checkpoints `engine`'s database file from a daemon thread until `stop`."""

    def __init__(self, engine: Engine, database: str) -> None:
        self._engine = engine
        self._wal = Path(f"{database}-wal")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="db-checkpoints", daemon=True)
        self.checkpointed = threading.Event()  # set after each checkpoint (for tests)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.wait(EVERY):
            try:
                if self._wal.stat().st_size < PAGES * FRAME:
                    continue
                with self._engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").close()
                self.checkpointed.set()
            except FileNotFoundError:  # no WAL yet, or the last connection closed it
                continue
            except Exception:  # never ends the thread: SQLite's WAL would only grow
                log.warning("WAL checkpoint failed; trying again", exc_info=True)
