"""Replicas: pacing shared through the database, and which process holds each delivery.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pacing",
        sa.Column("target", sa.String(320), primary_key=True),
        sa.Column("paced_until", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_pacing_paced_until", "pacing", ["paced_until"])
    op.add_column("deliveries", sa.Column("claimed_by", sa.String(300), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
