"""SQLite: the full-text index merged into one segment, so a `/story` word search seeks once.

Indexed a chunk at a time (0014), a million stories left nine segments in `stories_fts`, three
of them large; a query seeks each of its words in every segment and merges the doclists. Merged
(FTS5's 'optimize'), the `/story` title search of two words costs ~0.25 ms of CPU instead of
~0.44 ms at a million stories (docs/performance.md, "`/story` look-ups"). A one-time gain: stories
stored later enter new segments, one per chunk until FTS5's automerge joins them (30,000 more
left seven, and ~0.35 ms); keeping it merged is an ingest cost (docs/decisions.md). It takes
~3 s at a million stories. PostgreSQL searches through its GIN index: nothing to do.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO stories_fts(stories_fts) VALUES ('optimize')")


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
