"""Action items get a state, desk-wide, and every press an audit row.

New tables only, nothing existing changes: a story without an `action_items` row is open and
nobody's, so stories stored before this need no backfill.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.schema import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_items",
        sa.Column("story_id", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("by", sa.String(40)),
        sa.Column("at", UTCDateTime()),
        sa.Column("note", sa.Text()),
        sa.Column("reason", sa.String(20)),
        sa.Column("snoozed_until", UTCDateTime()),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_action_items_state", "action_items", ["state"])
    op.create_table(
        "action_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("press_key", sa.String(300), nullable=False, unique=True),
        sa.Column("story_id", sa.String(200), nullable=False),
        sa.Column("user", sa.String(40), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("reason", sa.String(20)),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_action_events_story_id", "action_events", ["story_id"])
    op.create_index("ix_action_events_at", "action_events", ["at"])


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
