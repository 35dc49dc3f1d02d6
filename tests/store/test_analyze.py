"""After a backfill the store refreshes PostgreSQL's statistics of its tables (SQLite needs none)."""

from __future__ import annotations

import sqlalchemy as sa

from engine.store import SqlStateStore


def _estimated_rows(store: SqlStateStore, table: str) -> float | None:
    """The planner's row estimate of `table` in the store's schema (-1: never analyzed); None on SQLite."""
    if store.backend != "postgresql":
        return None
    query = sa.text(
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = :name AND n.nspname = current_schema()"
    )
    with store._engine.connect() as conn:
        return float(conn.execute(query, {"name": table}).scalar_one())


def test_analyze_gives_postgresql_statistics_of_every_store_table_and_leaves_sqlite_alone(
    store: SqlStateStore,
) -> None:
    before = {name: _estimated_rows(store, name) for name in ("journal", "links", "ops", "ledger")}
    store.analyze()
    after = {name: _estimated_rows(store, name) for name in before}
    if store.backend == "postgresql":
        assert set(before.values()) == {-1.0}, "a new table was never analyzed"
        assert set(after.values()) == {0.0}, "analyzed: known to be empty"
    else:
        assert set(after.values()) == {None}
        with store._engine.connect() as conn:
            stats = conn.execute(sa.text("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'"))
            assert stats.first() is None, "SQLite was not analyzed"
