"""Daily digests follow the order stories were stored in, not a wall-clock margin.

Each story gets a number from one counter when it becomes an action item, taken in the
transaction that stores it; a subscriber keeps the highest number their last digest covered.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    # Plain ADD COLUMN (no batch copy on SQLite), as in 0006: `stories` carries FTS5 triggers.
    op.add_column("stories", sa.Column("qualified_seq", sa.BigInteger(), nullable=True))
    op.create_index("ix_stories_qualified_seq", "stories", ["qualified_seq"])
    op.add_column("subscribers", sa.Column("digest_seq", sa.BigInteger(), nullable=True))
    # Number the action items already stored in the order they became action items, and give
    # each subscriber the highest number inside the window their last digest covered.
    op.execute(
        "UPDATE stories SET qualified_seq = numbered.n FROM (SELECT id, row_number() OVER "
        "(ORDER BY qualified_at, id) AS n FROM stories WHERE qualified_at IS NOT NULL) AS numbered "
        "WHERE stories.id = numbered.id")
    op.execute("INSERT INTO counters (name, value) SELECT 'qualified', "
               "coalesce(max(qualified_seq), 0) FROM stories")
    # The last number at or before where each subscriber's last window ended (an index walk).
    op.execute(
        "UPDATE subscribers SET digest_seq = coalesce((SELECT qualified_seq FROM stories "
        "WHERE stories.qualified_at <= subscribers.digest_since "
        "ORDER BY stories.qualified_at DESC, stories.id DESC LIMIT 1), 0) "
        "WHERE digest_since IS NOT NULL")


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
