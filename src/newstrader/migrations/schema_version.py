"""The schema_version row every migration writes on upgrade and takes back on downgrade.

Alembic's own `alembic_version` says which revision a database is at; `schema_version` is older and
stays, because the journal reads max(version) to stamp a database made before Alembic
(`journal.PRE_ALEMBIC_REVISIONS`) and to refuse one from a newer newstrader.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# Only the columns a migration writes, as they were at revision 0001 (not the journal's Table:
# a migration must not change when the current schema does).
_SCHEMA_VERSION = sa.table(
    "schema_version", sa.column("version", sa.Integer), sa.column("applied_at", sa.String)
)


def write_version(version: int) -> None:
    """Record that the schema is now at `version` (the end of a migration's upgrade)."""
    applied_at = datetime.now(UTC).isoformat(timespec="microseconds")
    op.bulk_insert(_SCHEMA_VERSION, [{"version": version, "applied_at": applied_at}])


def remove_version(version: int) -> None:
    """Take `version` back (the start of a migration's downgrade)."""
    op.execute(_SCHEMA_VERSION.delete().where(_SCHEMA_VERSION.c.version == version))
