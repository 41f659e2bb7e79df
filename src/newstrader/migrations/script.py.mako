"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from newstrader.migrations.schema_version import remove_version, write_version
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
    # then write_version(N), N = the new journal.SCHEMA_VERSION


def downgrade() -> None:
    # first remove_version(N)
    ${downgrades if downgrades else "pass"}
