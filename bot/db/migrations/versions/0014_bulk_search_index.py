"""SQLite: new stories enter the full-text index once per stored chunk, not row by row.

The per-row trigger `stories_fts_insert` ran an FTS5 insert for every story stored: 10,000
stories took 1.1–1.2 s to insert with it, 0.34–0.37 s when each chunk of 1,000 is indexed by
one `INSERT … SELECT` (`bot.stories.archive.save`, the only code that inserts stories). The update and
delete triggers stay: a replaced version is rare and must leave the index in step. PostgreSQL
searches through an expression index (0004) and has nothing to change.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS stories_fts_insert")


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
