"""Migrations build the schema from an empty database, and the schema is exactly the tables module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.store import SqlStateStore
from engine.store.sql import alembic_config, make_engine
from engine.store.tables import metadata
from tests.support.samples import CONNECTION, at, customer_event
from tests.support.stores import postgres_schema, postgres_url

TABLES = {
    "connections",
    "links",
    "snapshots",
    "journal",
    "inbox",
    "ops",
    "ledger",
    "conflicts",
    "alert_incidents",
    "cursors",
    "audit",
    "parked_records",
    "users",
}


@pytest.fixture
def empty_database(store_backend: str, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """A URL (and PostgreSQL schema) with nothing in it yet."""
    if store_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}", None
    else:
        with postgres_schema() as schema:
            yield postgres_url(), schema


def table_names(url: str, schema: str | None) -> set[str]:
    engine = make_engine(url, schema=schema)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_migrate_builds_every_table_from_empty(empty_database: tuple[str, str | None]) -> None:
    url, schema = empty_database
    assert table_names(url, schema) == set()
    store = SqlStateStore(url, schema=schema)
    try:
        store.migrate()
        assert table_names(url, schema) == {*TABLES, "alembic_version"}
        with store.session() as s:
            s.append_event(customer_event(), at(1))
        store.migrate()
        with store.session() as s:
            assert len(s.pending_records(CONNECTION)) == 1
    finally:
        store.dispose()


def test_the_migrated_schema_matches_the_tables_module(empty_database: tuple[str, str | None]) -> None:
    url, schema = empty_database
    SqlStateStore(url, create=True, schema=schema).dispose()
    engine = make_engine(url, schema=schema)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_downgrade_to_nothing_and_back(empty_database: tuple[str, str | None]) -> None:
    url, schema = empty_database
    SqlStateStore(url, create=True, schema=schema).dispose()
    engine = make_engine(url, schema=schema)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert table_names(url, schema) == {"alembic_version"}
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        assert table_names(url, schema) >= TABLES
    finally:
        engine.dispose()


def test_open_store_migrates(tmp_path: Path) -> None:
    from engine.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'opened.db'}")
    try:
        with store.session() as s:
            assert s.list_connections() == []
        assert store.backend == "sqlite"
        assert "opened.db" in repr(store)
    finally:
        store.dispose()
