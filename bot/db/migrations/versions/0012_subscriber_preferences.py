"""What a reader sets on the email preference center: a minimum impact and a pause.

`min_impact` NULL means the desk's rule alone; `paused_until` NULL means not paused (a date:
no email before it, in the reader's time zone).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as table:
        table.add_column(sa.Column("min_impact", sa.Float(), nullable=True))
        table.add_column(sa.Column("paused_until", sa.Date(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
