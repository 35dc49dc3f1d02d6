"""The connector contract (the suite the in-memory fake passes), run against the SQL app connector
over the example invoicing app on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.ports import Connector
from tests.app.conftest import AppDb
from tests.contract.suite import ConnectorContract


class TestSqlConnectorOnSqlite(ConnectorContract):
    @pytest.fixture
    def connector(self, sqlite_example: AppDb) -> Iterator[Connector]:
        # Small pages, so that every paging test really pages.
        with sqlite_example.connector(page_size=3) as connector:
            yield connector


@pytest.mark.postgres
class TestSqlConnectorOnPostgres(ConnectorContract):
    @pytest.fixture
    def connector(self, pg_example: AppDb) -> Iterator[Connector]:
        with pg_example.connector(page_size=3) as connector:
            yield connector
