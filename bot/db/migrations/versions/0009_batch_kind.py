"""The instant message of several action items is a `batch`; "digest" is only the daily one.

Rows stored as kind 'digest' become 'batch'. Their dedupe keys (`digest:<target>:<first>-<last>`
match ids) stay as they are: a key only keeps a message from being planned twice, and a match
once planned is never planned again, so a new `batch:` key can never repeat an old message.
An older replica still running during a rolling upgrade may write 'digest' rows: the `batch`
kind reads that name too (`formerly`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 06:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE deliveries SET kind = 'batch' WHERE kind = 'digest'")


def downgrade() -> None:
    raise NotImplementedError("alertbot migrations go forward only")
