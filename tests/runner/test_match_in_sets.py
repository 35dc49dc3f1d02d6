"""The initial match asks the store in sets: its statements do not grow with the records matched, and
a company with nothing unlinked does not make it read the app at all."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from connectors.quickbooks.match import initial_match
from engine.clock import FakeClock
from engine.model import EntityType
from policies import PolicySet
from tests.support.loop import InProcess, in_process
from tests.support.stores import fresh_store

C = EntityType.CUSTOMER


def customers(loop: InProcess, n: int, *, both: bool) -> None:
    for i in range(n):
        fields = {"display_name": f"Customer {i:04}", "email": f"c{i:04}@example.test"}
        loop.app.create(C, dict(fields))
        if both:
            loop.quickbooks.create(C, dict(fields))


def statements_of_a_match(tmp_path: Path, clock: FakeClock, n: int) -> tuple[int, int]:
    """(statements the state store ran, records linked) for a match of `n` customers on both sides."""
    directory = tmp_path / str(n)
    directory.mkdir()
    with fresh_store("sqlite", directory) as store:
        loop = in_process(store, PolicySet.default(), clock)
        customers(loop, n, both=True)
        count = 0

        def counted(*_: object) -> None:
            nonlocal count
            count += 1

        engine = store._engine  # the state store's own engine: its statements, nobody else's
        sa.event.listen(engine, "before_cursor_execute", counted)
        try:
            report = initial_match(store, "default", loop.app, loop.quickbooks, loop.runner.policy, clock)
        finally:
            sa.event.remove(engine, "before_cursor_execute", counted)
        return count, report.count(C)


def test_the_match_runs_as_many_statements_for_200_pairs_as_for_20(tmp_path: Path, clock: FakeClock) -> None:
    few, linked_few = statements_of_a_match(tmp_path, clock, 20)
    many, linked_many = statements_of_a_match(tmp_path, clock, 200)
    assert (linked_few, linked_many) == (20, 200)
    # One query per entity and side for what is linked, one insert each for links, journal and audit:
    # per record (find_link, create_link, append_event, audit) it was over 1,000 for 200 pairs.
    assert many == few, (few, many)


def test_nothing_unlinked_in_quickbooks_means_the_app_is_not_read(tmp_path: Path, clock: FakeClock) -> None:
    with fresh_store("sqlite", tmp_path) as store:
        loop = in_process(store, PolicySet.default(), clock)
        customers(loop, 5, both=False)
        read = loop.app.read_changes
        asked: list[EntityType] = []

        def counting(entity: EntityType, cursor: str | None):  # type: ignore[no-untyped-def]
            asked.append(entity)
            return read(entity, cursor)

        loop.app.read_changes = counting  # type: ignore[method-assign]
        report = initial_match(store, "default", loop.app, loop.quickbooks, loop.runner.policy, clock)
        assert not any(report.linked.values())
        assert asked == [], "the app was read for a company with nothing to match"
