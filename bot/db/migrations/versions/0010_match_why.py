"""A match keeps its reason as clause data (`why`, JSON) beside the plain `reason`.

Templates word the clauses for the "Why:" line; `reason` stays the operator's form for logs and
`alertbot deliveries`. Rows from older releases have no `why`: their messages show `reason` as
it was stored. An older replica still running during a rolling upgrade writes matches without
`why`, which renders the same way.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("why", sa.Text(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
