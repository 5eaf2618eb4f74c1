"""message updates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 16:01:11.894385
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
        batch_op.create_foreign_key("fk_deliveries_parent", "deliveries",
                                    ["parent_id"], ["id"])


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
