"""The set-based store methods agree with their one-record counterparts, in a few statements."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.model import EntityType, Side
from engine.state import AuditAction, AuditLine, JournalStatus, Link, Processed, RecordKey, Snapshot
from engine.store import SqlStateStore
from engine.store.errors import LinkExistsError, SnapshotConflictError
from tests.support.samples import CONNECTION, at, customer_event
from tests.support.stores import fresh_store

C = EntityType.CUSTOMER


def key(external_id: str, side: Side = Side.QUICKBOOKS) -> RecordKey:
    return RecordKey(connection=CONNECTION, side=side, entity=C, external_id=external_id)


@contextmanager
def counted(store: SqlStateStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    engine = store._engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


#: (record id, version) deliveries: repeats, older versions and new ones, in any order.
deliveries = st.lists(st.tuples(st.sampled_from("abcd"), st.integers(1, 5)), max_size=25)


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SqlStateStore]]:
    with ExitStack() as stack:
        directory = tmp_path_factory.mktemp("bulk")
        yield {mode: stack.enter_context(fresh_store("sqlite", directory)) for mode in ("single", "bulk")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=deliveries, page=deliveries)
def test_a_page_journals_as_its_events_would_one_by_one(two_stores: dict[str, SqlStateStore], before, page):
    connection = uuid.uuid4().hex  # each example on a connection of its own
    results = {}
    journals = {}
    for mode, store in two_stores.items():
        with store.session() as s:
            for ext, seq in before:
                s.append_event(customer_event(ext, seq, connection=connection), at(0))
        events = [customer_event(ext, seq, name=f"v{seq}", connection=connection) for ext, seq in page]
        with store.session() as s:
            if mode == "single":
                results[mode] = [s.append_event(e, at(1)) for e in events]
            else:
                results[mode] = s.append_events(events, at(1))
        with store.session() as s:
            journals[mode] = {
                ext: (entry.event.version.seq, entry.status, entry.event.fields["display_name"])
                for ext in "abcd"
                if (entry := s.latest_event(key(ext).model_copy(update={"connection": connection})))
                is not None
            }
    assert results["bulk"] == results["single"]
    assert journals["bulk"] == journals["single"]


def test_many_records_cost_the_statements_of_one(store: SqlStateStore):
    events = [customer_event(str(i), 1) for i in range(200)]
    with counted(store) as few, store.session() as s:
        s.append_events(events[:2], at(1))
    with counted(store) as many, store.session() as s:
        s.append_events(events[2:], at(1))
        found = s.latest_events_of(CONNECTION, C, Side.QUICKBOOKS, [str(i) for i in range(200)])
        s.mark_processed_many(Processed(key(str(i)), 1) for i in range(200))
        s.audit_many(
            [AuditLine(CONNECTION, C, AuditAction.CAPTURED, at(1), external_id=str(i)) for i in range(200)]
        )
    assert len(found) == 200
    assert len(many) <= len(few) + 4  # + latest, mark, audit, and nothing per record
    with store.session() as s:
        assert all(s.latest_event(key(str(i))).status is JournalStatus.PROCESSED for i in range(200))  # type: ignore[union-attr]
        assert len(s.history(connection=CONNECTION, limit=1000)) == 200


def test_newest_event_per_record_skips_stale_versions(store: SqlStateStore):
    with store.session() as s:
        s.append_events([customer_event("a", 3), customer_event("a", 2), customer_event("b", 1)], at(1))
        newest = s.latest_events_of(CONNECTION, C, Side.QUICKBOOKS, ["a", "b", "missing"])
    assert {ext: e.event.version.seq for ext, e in newest.items()} == {"a": 3, "b": 1}


def test_links_are_found_created_and_locked_in_sets(store: SqlStateStore):
    links = [Link(id=f"l{i}", connection=CONNECTION, entity=C, app_id=f"a{i}") for i in range(5)]
    with store.session() as s:
        s.create_links(links)
        assert set(s.links_of(CONNECTION, C, Side.APP, ["a1", "a3", "zz"])) == {"a1", "a3"}
        assert set(s.lock_links(["l0", "l4", "nope"])) == {"l0", "l4"}
    with pytest.raises(LinkExistsError), store.session() as s:
        s.create_links([Link(id="other", connection=CONNECTION, entity=C, app_id="a2")])
    with store.session() as s:
        s.set_link_ids(Side.QUICKBOOKS, {"l0": "q0", "l1": "q1"})
        assert s.get_links(["l0", "l1"])["l1"].quickbooks_id == "q1"
    # An id another link holds: the whole transaction is refused, nothing changes.
    with pytest.raises(LinkExistsError), store.session() as s:
        s.set_link_ids(Side.QUICKBOOKS, {"l2": "q2", "l3": "q0"})
    with store.session() as s:
        assert s.get_links(["l2"])["l2"].quickbooks_id is None


def test_snapshots_saved_in_sets_check_each_revision(store: SqlStateStore):
    with store.session() as s:
        s.create_links([Link(id=f"l{i}", connection=CONNECTION, entity=C, app_id=f"a{i}") for i in range(3)])
        s.save_snapshots(CONNECTION, [Snapshot(link_id=f"l{i}", base={"n": i}) for i in range(3)], stored=())
    with store.session() as s:
        snapshots = s.snapshots_of(["l0", "l1", "l2"])
        assert {k: v.revision for k, v in snapshots.items()} == {"l0": 1, "l1": 1, "l2": 1}
        s.save_snapshots(
            CONNECTION,
            [v.model_copy(update={"base": {"n": 9}}) for v in snapshots.values()],
            stored=snapshots,
        )
    with store.session() as s:
        assert {k: v.base for k, v in s.snapshots_of(["l0", "l1", "l2"]).items()} == {
            "l0": {"n": 9},
            "l1": {"n": 9},
            "l2": {"n": 9},
        }
    # One of them saved from an old revision: the whole save is refused, the transaction rolls back.
    with pytest.raises(SnapshotConflictError), store.session() as s:
        s.save_snapshots(
            CONNECTION,
            [snapshots["l0"].model_copy(update={"revision": 2}), snapshots["l1"]],
            stored=snapshots,
        )
    with store.session() as s:
        assert s.get_snapshot("l0").revision == 2  # type: ignore[union-attr]
