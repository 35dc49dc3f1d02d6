"""Alembic migrations of the state store (run through `SqlStateStore.migrate`)."""
