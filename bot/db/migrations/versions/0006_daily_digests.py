"""Daily digests: when each subscriber's next digest is due, and when stories became action items.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy on SQLite): `stories` carries the FTS5 triggers and
    # rowids that migration 0004 set up, which a table copy would lose.
    op.add_column("subscribers", sa.Column("next_digest_at", sa.DateTime(), nullable=True))
    op.add_column("subscribers", sa.Column("digest_since", sa.DateTime(), nullable=True))
    op.create_index("ix_subscribers_next_digest_at", "subscribers", ["next_digest_at"])
    op.add_column("stories", sa.Column("qualified_at", sa.DateTime(), nullable=True))
    op.create_index("ix_stories_qualified_at", "stories", ["qualified_at"])
    # Stories already stored that qualify count from when their current version arrived.
    op.execute("UPDATE stories SET qualified_at = updated_at WHERE qualifies")


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
