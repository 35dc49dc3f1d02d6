"""The start-up check reflects the mapped tables together: on PostgreSQL a few catalog queries in all,
however many tables the mapping names, and what it finds is what reflecting each table alone finds."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from connectors.app.catalog import Catalog
from connectors.app.database import make_engine
from connectors.app.mapping import load_mapping
from connectors.app.schema import check, mapped_tables
from examples.invoicing import MAPPING
from tests.app.conftest import AppDb


@pytest.mark.postgres
def test_the_mapped_tables_are_reflected_in_a_few_queries_and_as_each_alone(pg_example: AppDb) -> None:
    engine = make_engine(pg_example.url, schema=pg_example.schema)
    mapping = load_mapping(MAPPING)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        catalog = Catalog(engine)
        statements.clear()
        check(catalog, mapping)
        together = len(statements)
        names = [n for n in mapped_tables(mapping) if n in catalog]
        statements.clear()
        alone = sa.inspect(engine)
        for name in names:  # what reflecting each table alone asks
            alone.get_columns(name), alone.get_pk_constraint(name), alone.get_indexes(name)
            alone.get_unique_constraints(name)
        assert together <= 10 and together * 3 <= len(statements), (
            together,
            len(statements),
        )  # 7 and 36 here
        assert len(names) >= 6
        for name in names:
            found = catalog.get(name)
            assert found is not None
            assert {c["name"] for c in alone.get_columns(name)} == set(found.types)
            assert tuple(alone.get_pk_constraint(name)["constrained_columns"]) == found.primary_key
            firsts = {i["column_names"][0] for i in alone.get_indexes(name)} | set(found.primary_key[:1])
            assert firsts <= (found.leads or frozenset())
    finally:
        engine.dispose()
