"""Full-text search over stories (SQLite FTS5, PostgreSQL tsvector) and look-up by URL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept in step with bot.stories.search.PG_SEARCH_VECTOR, which the query must repeat to use the index.
PG_VECTOR = ("setweight(to_tsvector('english', title), 'A') || "
             "setweight(to_tsvector('english', coalesce(search_text, '')), 'B')")

SQLITE = [
    # An external-content FTS5 index over stories(title, search_text), kept in sync by triggers.
    "CREATE VIRTUAL TABLE stories_fts USING fts5(title, search_text, content='stories', "
    "content_rowid='rowid', tokenize='porter unicode61')",
    "CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN "
    "INSERT INTO stories_fts(rowid, title, search_text) "
    "VALUES (new.rowid, new.title, new.search_text); END",
    "CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN "
    "INSERT INTO stories_fts(stories_fts, rowid, title, search_text) "
    "VALUES ('delete', old.rowid, old.title, old.search_text); END",
    "CREATE TRIGGER stories_fts_update AFTER UPDATE ON stories BEGIN "
    "INSERT INTO stories_fts(stories_fts, rowid, title, search_text) "
    "VALUES ('delete', old.rowid, old.title, old.search_text); "
    "INSERT INTO stories_fts(rowid, title, search_text) "
    "VALUES (new.rowid, new.title, new.search_text); END",
    "INSERT INTO stories_fts(stories_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE:
            op.execute(statement)
        op.create_index("ix_stories_url", "stories", ["url"])
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX ix_stories_search ON stories USING GIN (({PG_VECTOR}))")
        # A hash index: a B-tree entry cannot hold the longest URLs a story may carry.
        op.execute("CREATE INDEX ix_stories_url ON stories USING HASH (url)")


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
