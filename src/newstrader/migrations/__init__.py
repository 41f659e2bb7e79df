"""The journal's Alembic migrations (`versions/`), run by `journal._migrate` on the journal's connection."""
