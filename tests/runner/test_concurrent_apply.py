"""Two workers on one record at once, in the interleavings a busy machine produced (issue 10): the kick
sweep and an apply message writing one op together, and a decision taken while a create is recorded.

Each test sets up its interleaving on purpose (threads held at a given point, or the steps of the two
workers called in the order they ran), so it fails the same way every time without the fix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from engine.apply import Outcome, apply_op, outgoing_op, record_success, settle_error
from engine.clock import FakeClock
from engine.decide import Decision, decide
from engine.errors import VersionConflictError
from engine.fakes.connector import FakeConnector
from engine.model import EntityType, Side
from engine.plan import Op, OpKind, OpStatus
from engine.ports import WriteResult
from engine.state import RecordKey
from engine.store.session import SqlSession
from tests.support.loop import InProcess
from tests.support.sample import CUSTOMERS

C = EntityType.CUSTOMER
T = TypeVar("T")


class AnswerHeld:
    """A side whose write commits at once but whose answer is held until released (a slow network)."""

    def __init__(self, inner: FakeConnector) -> None:
        self.inner = inner
        self.landed = threading.Event()
        self.release = threading.Event()

    def write(self, op: Op) -> WriteResult:
        result = self.inner.write(op)
        self.landed.set()
        assert self.release.wait(10), "the test never released the held answer"
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def synced_customer(loop: InProcess) -> tuple[str, str]:
    """A customer created in the app and synced; its app id and QuickBooks id."""
    app_id = loop.app.create(C, dict(CUSTOMERS[0]))
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        link = s.find_link("default", C, Side.APP, app_id)
    assert link is not None and link.quickbooks_id is not None
    return app_id, link.quickbooks_id


def planned_op(loop: InProcess, side: Side) -> Op:
    """Poll the app, decide, and return the one op planned for `side` (still pending)."""
    loop.runner.poll(Side.APP, C)
    loop.runner.decide_pending()
    with loop.store.session() as s:
        (record,) = [r for r in s.ops("default", [OpStatus.PENDING]) if r.op.side is side]
    return record.op


def test_an_op_another_worker_is_writing_is_skipped_not_written_again(loop: InProcess, clock: FakeClock):
    app_id, qbo_id = synced_customer(loop)
    clock.advance(60)
    loop.app.edit(C, app_id, notes="gate code 4411")
    op = planned_op(loop, Side.QUICKBOOKS)
    held = AnswerHeld(loop.quickbooks)
    writes = loop.quickbooks.calls["write"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(apply_op, loop.store, held, op.op_id, clock.now())  # an apply message
        assert held.landed.wait(10)
        try:
            # The kick sweep reaches the same pending op while the first worker waits for its answer.
            second = apply_op(loop.store, loop.quickbooks, op.op_id, clock.now())
        finally:
            held.release.set()
        assert first.result(timeout=10).outcome == Outcome.APPLIED
    assert second.outcome == Outcome.SKIPPED
    assert loop.quickbooks.calls["write"] == writes + 1
    with loop.store.session() as s:
        record = s.get_op(op.op_id)
    assert record is not None and record.status is OpStatus.APPLIED
    loop.runner.run_until_quiet()
    assert loop.quickbooks.get(C, qbo_id)["notes"] == "gate code 4411"  # type: ignore[index]


def test_a_landed_write_is_recorded_after_a_second_attempt_superseded_it(loop: InProcess, clock: FakeClock):
    # What a worker's log showed under load: the second attempt at an op failed on the version the
    # first attempt's write had just produced, superseded the op and journaled that version; the
    # first attempt then found the op not pending and recorded nothing. With no ledger entry, our own
    # write came back as a QuickBooks edit stamped after the user's newer app edit, and newest_wins
    # wrote it over that edit.
    app_id, qbo_id = synced_customer(loop)
    clock.advance(60)
    loop.app.edit(C, app_id, notes="app 230")
    op = planned_op(loop, Side.QUICKBOOKS)
    clock.advance(60)
    loop.app.edit(C, app_id, notes="app 231")  # the user's last word, while the op is in flight
    clock.advance(60)
    with loop.store.session() as s:
        outgoing = outgoing_op(s, op)
    landed = loop.quickbooks.write(outgoing)  # the first attempt's write commits
    stale = VersionConflictError(f"customer {qbo_id} moved to SyncToken {landed.version.seq}")
    assert settle_error(loop.store, loop.quickbooks, op, stale, clock.now()).outcome == Outcome.SUPERSEDED
    with loop.store.session() as s:
        record_success(s, op, landed, clock.now())  # the first attempt's answer arrives
    loop.runner.run_until_quiet()
    assert loop.app.get(C, app_id)["notes"] == "app 231"  # type: ignore[index]
    assert loop.quickbooks.get(C, qbo_id)["notes"] == "app 231"  # type: ignore[index]
    with loop.store.session() as s:
        assert s.ledger_for("default", Side.QUICKBOOKS, C, qbo_id)[-1].seq >= landed.version.seq
        record = s.get_op(op.op_id)
    assert record is not None and record.status is OpStatus.APPLIED


def backend_pid(s: SqlSession) -> int:
    return int(s._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


@contextmanager
def held_open(loop: InProcess, body: Callable[[SqlSession], None]) -> Iterator[int]:
    """Run `body` in a session left open (its locks held) until the block ends; yields its backend."""
    ready, release = threading.Event(), threading.Event()
    pid: list[int] = []

    def hold() -> None:
        with loop.store.session() as s:
            assert isinstance(s, SqlSession)
            pid.append(backend_pid(s))
            body(s)
            ready.set()
            assert release.wait(10)

    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(hold)
        assert ready.wait(10) or holder.result()
        try:
            yield pid[0]
        finally:
            release.set()
            holder.result(timeout=10)


def waits_for(loop: InProcess, holder: int, work: Callable[[], T]) -> Callable[[], T]:
    """Start `work` in a thread and return once PostgreSQL shows it blocked by `holder`; call the
    returned function (after releasing the holder) for its result."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(work)
    deadline = time.monotonic() + 10
    query = f"SELECT count(*) FROM pg_stat_activity WHERE {holder} = ANY(pg_blocking_pids(pid))"
    while True:
        # A transaction each time: PostgreSQL shows pg_stat_activity as it was when a transaction
        # first read it.
        with loop.store.session() as s:
            assert isinstance(s, SqlSession)
            if s._conn.exec_driver_sql(query).scalar_one():
                break
        assert not future.done(), f"finished without waiting: {future.result()}"
        assert time.monotonic() < deadline, "never blocked by the held session"
        time.sleep(0.01)

    def result() -> T:
        try:
            return future.result(timeout=10)
        finally:
            pool.shutdown()

    return result


@pytest.mark.parametrize("store_backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_edit_decided_while_its_create_is_recorded_updates_quickbooks(loop: InProcess, clock: FakeClock):
    # PostgreSQL only: SQLite runs one session at a time, so a decision cannot read the link before
    # an apply's commit and the rest after it.
    app_id = loop.app.create(C, dict(CUSTOMERS[0]))
    create = planned_op(loop, Side.QUICKBOOKS)
    assert create.kind is OpKind.CREATE
    with loop.store.session() as s:
        outgoing = outgoing_op(s, create)
    landed = loop.quickbooks.write(outgoing)
    clock.advance(60)
    loop.app.edit(C, app_id, phone="555-010-7777")  # edited while the create's answer is on its way
    loop.runner.poll(Side.APP, C)
    key = RecordKey(connection="default", side=Side.APP, entity=C, external_id=app_id)

    def decide_edit() -> Decision | None:
        with loop.store.session() as s:
            return decide(s, key, loop.runner.policy, clock.now())

    # The apply records the create (holding the link) while a reconcile of the edit reads the link
    # and then waits for that lock.
    with held_open(loop, lambda s: record_success(s, create, landed, clock.now())) as holder:
        decided = waits_for(loop, holder, decide_edit)
    decision = decided()
    assert decision is not None
    assert decision.plan.conflicts == ()
    assert [(w.side, w.kind, w.external_id, dict(w.fields)) for w in decision.plan.writes] == [
        (Side.QUICKBOOKS, OpKind.UPDATE, landed.external_id, {"phone": "555-010-7777"})
    ]


@pytest.mark.parametrize("store_backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_kick_sweep_goes_on_past_a_record_another_worker_linked_at_that_moment(
    loop: InProcess, clock: FakeClock
):
    first = loop.app.create(C, dict(CUSTOMERS[0]))
    loop.app.create(C, dict(CUSTOMERS[1]))
    loop.runner.poll(Side.APP, C)
    key = RecordKey(connection="default", side=Side.APP, entity=C, external_id=first)
    # A reconcile message links the first new customer; the sweep, deciding it too, waits on that link.
    with held_open(loop, lambda s: _decided(decide(s, key, loop.runner.policy, clock.now()))) as holder:
        swept = waits_for(loop, holder, loop.runner.decide_pending)
    assert swept() == 1  # the second customer; the first was the other worker's to decide
    with loop.store.session() as s:
        creates = [r.op for r in s.ops("default", [OpStatus.PENDING])]
        links = s.list_links("default", C)
    assert sorted(op.kind for op in creates) == [OpKind.CREATE, OpKind.CREATE]
    assert len(links) == 2


def _decided(decision: Decision | None) -> None:
    assert decision is not None and decision.op_ids


@pytest.mark.parametrize("store_backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_kick_sweep_skips_a_record_another_worker_holds_instead_of_waiting(
    loop: InProcess, clock: FakeClock
):
    # The sweep decides its records many to a transaction. Waiting there for a link another worker
    # holds, while holding the links decided before it, deadlocked two overlapping sweeps (or a sweep
    # and a reconcile) under load. It skips that record: its holder, or the next sweep, decides it.
    first = loop.app.create(C, dict(CUSTOMERS[0]))
    second = loop.app.create(C, dict(CUSTOMERS[1]))
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        held_link = s.find_link("default", C, Side.APP, second)
    assert held_link is not None
    clock.advance(60)
    loop.app.edit(C, first, phone="555-010-1111")
    loop.app.edit(C, second, phone="555-010-2222")
    loop.runner.poll(Side.APP, C)

    def hold(s: SqlSession) -> None:
        s.lock_link(held_link.id)  # another worker deciding or applying the second customer

    with held_open(loop, hold) as holder:
        pool = ThreadPoolExecutor(max_workers=1)
        sweep = pool.submit(loop.runner.decide_pending)
        query = f"SELECT count(*) FROM pg_stat_activity WHERE {holder} = ANY(pg_blocking_pids(pid))"
        deadline = time.monotonic() + 10
        while not sweep.done():
            with loop.store.session() as s:
                assert isinstance(s, SqlSession)
                blocked = s._conn.exec_driver_sql(query).scalar_one()
            assert not blocked, "the sweep waits for a link another worker holds"
            assert time.monotonic() < deadline, "the sweep never finished"
            time.sleep(0.01)
        assert sweep.result() == 1  # the first customer; the second is the holder's
        pool.shutdown()
    assert loop.runner.decide_pending() == 1  # the second, now that it is free
    loop.runner.run_until_quiet()
    assert loop.quickbooks.all(C)  # and both edits reached QuickBooks
    phones = sorted(c["phone"] for c in loop.quickbooks.all(C).values())
    assert phones == ["555-010-1111", "555-010-2222"]
