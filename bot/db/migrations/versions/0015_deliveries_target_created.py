"""Deliveries indexed by target and creation time: when a target's last message was made.

Planning asks, every chunk an ingest stores, when each target with pending matches was last
sent a message (`max(created_at)` per target, for its batch window). Through the index on
`target` alone that read every row the target ever had: with 100 routes, a push of 100 stories
read the whole outbox of those channels. With this index it is one step per target.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 04:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_deliveries_target_created", "deliveries", ["target", "created_at"])


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
