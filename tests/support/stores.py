"""Fresh, migrated state stores for tests: SQLite in a temporary file, or a private PostgreSQL schema.

Use `fresh_store(backend, tmp_path)` directly, or the `store` fixture (parametrized over both backends,
the PostgreSQL case marked `postgres`) by importing it into a conftest.py:

    from tests.support.stores import store, store_backend  # noqa: F401

PostgreSQL comes from LEDGERSYNC_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Every PostgreSQL store lives in its own schema `ls_<random>`, dropped afterwards, so tests may share
the database with other people's tests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.model import EntityType, Side
from engine.ports import StateStore
from engine.store import SqlStateStore

PG_URL_VARIABLE = "LEDGERSYNC_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgres")


def postgres_url() -> str:
    return os.environ.get(PG_URL_VARIABLE, DEFAULT_PG_URL)


@contextmanager
def postgres_schema(url: str | None = None, *, prefix: str = "ls") -> Iterator[str]:
    """A new empty schema `<prefix>_<random>` in the test database, dropped (with its contents) afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = sa.create_engine(url or postgres_url(), poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
        yield name
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.dispose()


@contextmanager
def fresh_store(backend: str, directory: Path) -> Iterator[SqlStateStore]:
    """A newly migrated, empty store on `backend` ("sqlite" or "postgres"), disposed and removed after.

    SQLite: a new file in `directory` (give it pytest's tmp_path). PostgreSQL: a private schema.
    """
    if backend == "sqlite":
        path = directory / f"state-{secrets.token_hex(4)}.db"
        store = SqlStateStore(f"sqlite:///{path}", create=True)
        try:
            yield store
        finally:
            store.dispose()
    elif backend == "postgres":
        url = postgres_url()
        with postgres_schema(url) as schema:
            store = SqlStateStore(url, create=True, schema=schema)
            try:
                yield store
            finally:
                store.dispose()
    else:
        raise ValueError(f"unknown store backend {backend!r}; expected one of {BACKENDS}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per backend; `-m "not postgres"` keeps to SQLite."""
    backend: str = request.param
    return backend


@pytest.fixture
def store(store_backend: str, tmp_path: Path) -> Iterator[SqlStateStore]:
    """A fresh migrated store on each backend (see `store_backend`)."""
    with fresh_store(store_backend, tmp_path) as fresh:
        yield fresh


def linked_id(store: StateStore, connection: str, entity: EntityType, side: Side, external_id: str) -> str:
    """The id, on the other side, of the record linked to `side`'s `external_id` (asserted to exist)."""
    with store.session() as s:
        link = s.find_link(connection, entity, side, external_id)
    other = link.external_id(side.other) if link is not None else None
    assert other is not None, f"{side} {entity} {external_id} is not linked to a record on {side.other}"
    return other
