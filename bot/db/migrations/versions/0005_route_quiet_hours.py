"""Quiet hours on routes made with /alerts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slack_routes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quiet_hours", sa.String(length=11), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=False,
                                      server_default="UTC"))


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
