"""App databases for the connector tests: the example invoicing app on SQLite (a temporary file) and
on PostgreSQL (a private schema per test session, dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.app import SqlConnector
from examples.invoicing import MAPPING, create_example_db
from tests.support.stores import postgres_schema, postgres_url


@dataclass(frozen=True)
class AppDb:
    url: str
    schema: str | None = None

    def connector(self, mapping: Path = MAPPING, **options: object) -> SqlConnector:
        return SqlConnector.open(mapping, self.url, schema=self.schema, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_example() -> Iterator[AppDb]:
    """The seeded example app in one PostgreSQL schema shared by the session's tests."""
    with postgres_schema() as schema:
        create_example_db(postgres_url(), schema=schema)
        yield AppDb(postgres_url(), schema)


@pytest.fixture
def sqlite_example(tmp_path: Path) -> AppDb:
    """A fresh seeded example app in a SQLite file."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    create_example_db(url)
    return AppDb(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def example_db(request: pytest.FixtureRequest, tmp_path: Path) -> AppDb:
    """The seeded example app, once per backend (PostgreSQL: the session's shared schema)."""
    if request.param == "postgres":
        db: AppDb = request.getfixturevalue("pg_example")
        return db
    url = f"sqlite:///{tmp_path / 'app.db'}"
    create_example_db(url)
    return AppDb(url)


@pytest.fixture
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppDb]:
    """An empty database per test: a SQLite file, or a new PostgreSQL schema (see `backend` param)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgres":
        with postgres_schema() as schema:
            yield AppDb(postgres_url(), schema)
    else:
        yield AppDb(f"sqlite:///{tmp_path / 'fresh.db'}")


@pytest.fixture
def fresh_pg_example() -> Iterator[AppDb]:
    """A seeded example app in a PostgreSQL schema of its own, for tests that race transactions."""
    with postgres_schema() as schema:
        create_example_db(postgres_url(), schema=schema)
        yield AppDb(postgres_url(), schema)
