"""The fake's change feed: current state per change, paged by an opaque counter cursor."""

from __future__ import annotations

import pytest

from engine.clock import FakeClock
from engine.errors import ConfigurationError
from engine.fakes import FakeConnector
from engine.model import EntityType, Operation

from .conftest import T0


def test_events_carry_the_current_state_at_read_time(app: FakeConnector, clock: FakeClock) -> None:
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    app.edit(EntityType.CUSTOMER, cid, notes="second")
    clock.advance(5)
    page = app.read_changes(EntityType.CUSTOMER, None)
    assert len(page.events) == 1, "two changes to one record collapse to one event in a page"
    (event,) = page.events
    assert (event.version.seq, event.version.at) == (1, T0)
    assert event.fields["notes"] == "second"
    assert event.observed_at > event.version.at
    assert (event.connection, event.side) == ("c1", app.side)


def test_a_deleted_record_reads_as_a_delete_at_its_deletion_version(app: FakeConnector) -> None:
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    app.delete(EntityType.CUSTOMER, cid)
    (event,) = app.read_changes(EntityType.CUSTOMER, None).events
    assert event.operation is Operation.DELETE
    assert event.version.seq == 1
    assert event.fields == {}


def test_pages_hold_at_most_page_size_changes_oldest_first(app: FakeConnector) -> None:
    ids = [app.create(EntityType.CUSTOMER, {"display_name": f"C{n}"}) for n in range(5)]
    first = app.read_changes(EntityType.CUSTOMER, None)
    assert [e.external_id for e in first.events] == ids[:3]
    assert not first.complete
    second = app.read_changes(EntityType.CUSTOMER, first.cursor)
    assert [e.external_id for e in second.events] == ids[3:]
    assert second.complete


def test_a_complete_page_resumes_after_every_change_so_far(app: FakeConnector) -> None:
    app.create(EntityType.ITEM, {"name": "Consulting"})
    empty = app.read_changes(EntityType.CUSTOMER, None)
    assert (empty.events, empty.cursor, empty.complete) == ((), "1", True)
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    assert [e.external_id for e in app.read_changes(EntityType.CUSTOMER, empty.cursor).events] == [cid]


def test_the_read_is_counted(app: FakeConnector) -> None:
    app.read_changes(EntityType.CUSTOMER, None)
    app.read_changes(EntityType.ITEM, "0")
    assert app.calls["read_changes"] == 2


@pytest.mark.parametrize("cursor", ["", "abc", "-1"])
def test_a_foreign_cursor_is_a_configuration_error(app: FakeConnector, cursor: str) -> None:
    with pytest.raises(ConfigurationError):
        app.read_changes(EntityType.CUSTOMER, cursor)
