"""The presser's name as Slack sent it with the press, for media that cannot resolve a
Slack user ID (`<@U…>` means nothing in an email or a terminal).

`action_items.by_name` is the name of whoever holds the state (`by`); `action_events.name` is
the presser's, for the history. NULL for presses stored before this: readers fall back.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("action_items") as table:
        table.add_column(sa.Column("by_name", sa.String(80), nullable=True))
    with op.batch_alter_table("action_events") as table:
        table.add_column(sa.Column("name", sa.String(80), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
