"""orders.instance: which bot instance sent each order (several bots share one journal)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newstrader.migrations.schema_version import remove_version, write_version

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instance", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_orders_instance", ["instance"], unique=False)
    write_version(3)


def downgrade() -> None:
    remove_version(3)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_instance")
        batch_op.drop_column("instance")
