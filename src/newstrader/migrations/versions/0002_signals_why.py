"""signals.why: the parser's rules behind each signal (schema version 2)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("why", sa.Text(), nullable=True))
    version = sa.table("schema_version", sa.column("version", sa.Integer), sa.column("applied_at", sa.String))
    op.bulk_insert(
        version, [{"version": 2, "applied_at": datetime.now(UTC).isoformat(timespec="microseconds")}]
    )


def downgrade() -> None:
    op.execute("DELETE FROM schema_version WHERE version = 2")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_column("why")
