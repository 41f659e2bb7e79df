"""outcomes: one per (signal, venue)

A signal is executed on an account once; its outcome is the record of that. Two bots could
each journal one (an owner paused between its fencing check and the outcome write, woken after
the standby had taken the account over and finished the item), so the journal now refuses the
second. Rows that already doubled keep the first (lowest id), as `venue_outcome` always read.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from newstrader.migrations.schema_version import remove_version, write_version

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM outcomes WHERE id NOT IN (SELECT min(id) FROM outcomes GROUP BY signal_id, venue)"
    )
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_index("uq_outcomes_signal_venue", ["signal_id", "venue"], unique=True)
    write_version(4)


def downgrade() -> None:
    remove_version(4)
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_index("uq_outcomes_signal_venue")
