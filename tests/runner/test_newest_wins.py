"""`newest_wins` through the whole loop: the times it compares are the users' edits, never our writes."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from engine.clock import FakeClock
from engine.decide import decide_many
from engine.model import ChangeEvent, EntityType, Side, Version
from engine.plan import OpKind, OpStatus
from engine.state import LedgerEntry
from policies import PolicySet
from tests.support.loop import InProcess

C = EntityType.CUSTOMER


def linked_customer(loop: InProcess, clock: FakeClock) -> tuple[str, str]:
    app_id = loop.app.create(C, {"display_name": "Faulty 0001", "email": "f1@example.com"})
    loop.runner.run_until_quiet()
    clock.advance(60)
    with loop.store.session() as s:
        [link] = s.list_links(loop.runner.connection, C)
    assert link.quickbooks_id is not None
    return app_id, link.quickbooks_id


def test_a_later_edit_in_quickbooks_beats_an_earlier_app_edit_that_our_write_made_look_newer(
    loop: InProcess, clock: FakeClock
):
    app_id, qbo_id = linked_customer(loop, clock)
    # The app user sets the company; the accountant edits the notes: one plan, a write each way.
    loop.app.edit(C, app_id, company_name="app 28")
    loop.quickbooks.edit(C, qbo_id, notes="called back")
    clock.advance(60)
    loop.runner.poll(Side.APP, C)
    loop.runner.poll(Side.QUICKBOOKS, C)
    assert loop.runner.decide_pending() == 1
    # Before our company write reaches QuickBooks, the accountant sets another company there.
    clock.advance(60)
    loop.quickbooks.edit(C, qbo_id, company_name="qbo 44")
    clock.advance(60)
    # Our notes land in the app (its newest version is now ours, the newest of all); the company
    # write meets a stale SyncToken and is superseded.
    loop.runner.apply_pending()
    with loop.store.session() as s:
        kinds = {(r.op.side, r.op.kind, r.status) for r in s.ops(loop.runner.connection, list(OpStatus))}
    assert (Side.APP, OpKind.UPDATE, OpStatus.APPLIED) in kinds
    assert (Side.QUICKBOOKS, OpKind.UPDATE, OpStatus.SUPERSEDED) in kinds
    clock.advance(60)
    loop.runner.run_until_quiet()
    # The accountant's edit came last: it wins on both sides, nothing waits for a reviewer.
    assert loop.quickbooks.get(C, qbo_id)["company_name"] == "qbo 44"  # type: ignore[index]
    assert loop.app.get(C, app_id)["company_name"] == "qbo 44"  # type: ignore[index]
    assert loop.app.get(C, app_id)["notes"] == "called back"  # type: ignore[index]


def test_the_time_of_a_users_edit_is_read_for_a_page_in_one_statement(loop: InProcess, clock: FakeClock):
    # Every record's newest QuickBooks version is our own write (the echo of the app's edit): deciding
    # a page of them reads when the accountant last edited each in one statement, not one per record.
    ids = [
        loop.app.create(C, {"display_name": f"Client {i}", "email": f"c{i}@example.com"}) for i in range(12)
    ]
    loop.runner.run_until_quiet()
    clock.advance(60)
    for app_id in ids:
        loop.app.edit(C, app_id, notes="first")
    clock.advance(60)
    loop.runner.run_until_quiet()
    clock.advance(60)
    for app_id in ids:
        loop.app.edit(C, app_id, notes="second")
    clock.advance(60)
    loop.runner.poll(Side.APP, C)
    with loop.store.session() as s:
        keys = s.pending_records(loop.runner.connection, limit=1000)
    assert len(keys) == len(ids)
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    sa.event.listen(loop.store._engine, "before_cursor_execute", count)
    try:
        with loop.store.session() as s:
            decisions = decide_many(s, keys, PolicySet.default(), clock.now(), wait=False)
    finally:
        sa.event.remove(loop.store._engine, "before_cursor_execute", count)
    assert all(d is not None and len(d.plan.writes) == 1 for d in decisions)
    assert sum("FROM ledger" in statement and "FROM journal" in statement for statement in seen) == 1


def test_the_users_last_edit_is_the_newest_version_not_in_the_ledger(loop: InProcess, clock: FakeClock):
    start = clock.now()

    def version(external_id: str, seq: int, minutes: int) -> ChangeEvent:
        return ChangeEvent(
            side=Side.APP,
            connection="default",
            entity=C,
            external_id=external_id,
            version=Version(seq=seq, at=start + timedelta(minutes=minutes)),
            observed_at=start,
            fields={"display_name": f"Client {external_id}"},
        )

    def ours(external_id: str, seq: int) -> LedgerEntry:
        return LedgerEntry(
            connection="default",
            side=Side.APP,
            entity=C,
            external_id=external_id,
            seq=seq,
            fields=frozenset(),
        )

    with loop.store.session() as s:
        # "a": a person's edit (seq 1), then two writes of ours. "b": only ever written by us (the
        # person's versions no longer held). "c": the newest version is a person's own.
        s.append_events([version("a", 1, 1), version("a", 2, 2), version("a", 3, 3)], start)
        s.append_events([version("b", 0, 1), version("b", 1, 2)], start)
        s.append_events([version("c", 4, 1), version("c", 5, 5)], start)
        s.record_writes([ours("a", 2), ours("a", 3), ours("b", 0), ours("b", 1), ours("c", 4)])
    with loop.store.session() as s:
        found = s.user_edits_of("default", C, Side.APP, ["a", "b", "c", "unknown"])
    assert found == {"a": start + timedelta(minutes=1), "c": start + timedelta(minutes=5)}
