"""Deciding in sets: a page of records in a fixed number of statements, each record decided once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from engine.clock import FakeClock
from engine.decide import decide_many
from engine.model import EntityType, Side
from engine.plan import OpStatus
from engine.state import JournalStatus, RecordKey
from engine.store import SqlStateStore
from policies import PolicySet
from tests.support.loop import InProcess

C = EntityType.CUSTOMER


@contextmanager
def counted(store: SqlStateStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    sa.event.listen(store._engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(store._engine, "before_cursor_execute", count)


def linked(loop: InProcess, clock: FakeClock, n: int) -> list[str]:
    ids = [
        loop.app.create(C, {"display_name": f"Client {i}", "email": f"c{i}@example.com"}) for i in range(n)
    ]
    assert loop.runner.run_until_quiet().decided == n
    clock.advance(60)
    return ids


def journal_app_edits(loop: InProcess, clock: FakeClock, ids: list[str], note: str) -> list[RecordKey]:
    for app_id in ids:
        loop.app.edit(C, app_id, notes=note)
    clock.advance(60)
    loop.runner.poll(Side.APP, C)
    with loop.store.session() as s:
        return s.pending_records(loop.runner.connection, limit=1000)


def test_a_page_of_records_costs_the_statements_of_a_few(loop: InProcess, clock: FakeClock):
    ids = linked(loop, clock, 60)
    policy = PolicySet.default()
    counts = []
    for chunk, note in ((ids[:3], "first"), (ids[3:], "second")):
        keys = journal_app_edits(loop, clock, chunk, note)
        assert len(keys) == len(chunk)
        with counted(loop.store) as seen, loop.store.session() as s:
            decisions = decide_many(s, keys, policy, clock.now(), wait=False)
        assert all(d is not None and len(d.plan.writes) == 1 for d in decisions)
        counts.append(len(seen))
    # 3 records or 57: the same statements (a per-record query would add 54 or more).
    assert counts[1] <= counts[0] + 2, counts
    with loop.store.session() as s:
        assert len(s.ops(loop.runner.connection, [OpStatus.PENDING])) == 60


def test_a_record_changed_on_both_sides_is_decided_once(loop: InProcess, clock: FakeClock):
    [app_id] = linked(loop, clock, 1)
    with loop.store.session() as s:
        [link] = s.list_links(loop.runner.connection, C)
    assert link.quickbooks_id is not None
    loop.app.edit(C, app_id, notes="from the app")
    loop.quickbooks.edit(C, link.quickbooks_id, phone="555-0100")
    clock.advance(60)
    loop.runner.poll(Side.APP, C)
    loop.runner.poll(Side.QUICKBOOKS, C)
    with loop.store.session() as s:
        keys = s.pending_records(loop.runner.connection)
    assert {k.side for k in keys} == {Side.APP, Side.QUICKBOOKS}
    with loop.store.session() as s:
        first, second = decide_many(s, keys, PolicySet.default(), clock.now())
    assert first is not None and second is None
    # One plan carries both changes, each to the other side.
    assert {w.side: set(w.fields) for w in first.plan.writes} == {
        Side.QUICKBOOKS: {"notes"},
        Side.APP: {"phone"},
    }
    with loop.store.session() as s:
        assert s.pending_records(loop.runner.connection) == []
        for key in keys:
            entry = s.latest_event(key)
            assert entry is not None and entry.status is JournalStatus.PROCESSED


def test_open_conflicts_elsewhere_cost_unrelated_records_nothing(loop: InProcess, clock: FakeClock):
    ids = linked(loop, clock, 30)
    with loop.store.session() as s:
        by_app = {link.app_id: link for link in s.list_links(loop.runner.connection, C)}
    # Both sides edit the e-mail of ten records: ten conflicts open.
    for app_id in ids[:10]:
        loop.app.edit(C, app_id, email=f"app-{app_id}@example.com")
        qbo_id = by_app[app_id].quickbooks_id
        assert qbo_id is not None
        loop.quickbooks.edit(C, qbo_id, email=f"qbo-{app_id}@example.com")
    clock.advance(60)
    stats = loop.runner.run_until_quiet()
    assert stats.conflicts == 10
    keys = journal_app_edits(loop, clock, ids[10:], "unrelated")
    with counted(loop.store) as seen, loop.store.session() as s:
        decisions = decide_many(s, keys, PolicySet.default(), clock.now(), wait=False)
    assert all(d is not None and not d.plan.conflicts for d in decisions)
    assert not any("conflicts" in statement and "audit" in statement for statement in seen)
    assert sum("FROM conflicts" in statement for statement in seen) == 1
