"""signals.why: the parser's rules behind each signal (schema version 2)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newstrader.migrations.schema_version import remove_version, write_version

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("why", sa.Text(), nullable=True))
    write_version(2)


def downgrade() -> None:
    remove_version(2)
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_column("why")
