"""A worker killed after the other side committed a request, before we recorded its answer.

The restarted worker must send exactly the same request again (the same ops under the same
requestid), or QuickBooks writes them a second time. The fake here keeps QuickBooks' rule: a /batch
is replayed only when its requestid, the set of its ops, was seen before; any other set is written
anew, so a batch formed differently after the restart creates duplicates the counts show.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from engine import pipeline
from engine.apply import Outcome, apply_op
from engine.apply_batch import batch_key
from engine.clock import FakeClock
from engine.errors import LedgersyncError
from engine.fakes.connector import FakeConnector
from engine.model import EntityType, Side
from engine.plan import Op, OpStatus
from engine.ports import Capabilities, WriteResult
from engine.runner import Runner
from engine.state import SENT_SINGLE
from engine.store.sql import SqlStateStore
from policies import PolicySet
from tests.support.stores import fresh_store

C = EntityType.CUSTOMER


class Killed(BaseException):
    """The worker process dying mid-request: nothing after it runs, nothing is recorded."""


class RequestIdFake(FakeConnector):
    """QuickBooks' side with its requestid rule for /batch; `kill_after` requests die once committed."""

    def __init__(self, clock: FakeClock, batch_size: int) -> None:
        super().__init__(Side.QUICKBOOKS, "default", clock, computes_totals=True)
        self.batch_size = batch_size
        self.requests: list[list[str]] = []
        self._answers: dict[frozenset[str], list[WriteResult | LedgersyncError]] = {}
        self.kill_after: set[int] = set()
        self.batches_left = 100
        self.spares_left = 100

    def capabilities(self) -> Capabilities:
        return super().capabilities().model_copy(update={"batch_size": self.batch_size})

    def _die_if_asked(self) -> None:
        if len(self.requests) in self.kill_after:
            self.kill_after.discard(len(self.requests))
            raise Killed

    def write_many(self, ops: Sequence[Op]) -> list[WriteResult | LedgersyncError]:
        self.requests.append([op.op_id for op in ops])
        key = frozenset(op.op_id for op in ops)
        if key not in self._answers:  # a requestid not seen: every item is written, again if need be
            nth = len(self._answers)
            self._answers[key] = [
                self.write(op.model_copy(update={"op_id": f"{nth}/{op.op_id}"})) for op in ops
            ]
        self._die_if_asked()
        return self._answers[key]

    def room(self) -> tuple[int, int, float]:
        return (self.batches_left, self.spares_left, 0.0)

    def write_spare(self, op: Op) -> WriteResult:
        self.requests.append([op.op_id])
        result = self.write(op)  # a single write's requestid is its op id: replayed by the fake
        self._die_if_asked()
        return result


@pytest.fixture
def store(tmp_path: Path, store_backend: str) -> Iterator[SqlStateStore]:
    with fresh_store(store_backend, tmp_path) as s:
        yield s


def _wired(store: SqlStateStore, clock: FakeClock, customers: int) -> tuple[Runner, RequestIdFake]:
    app = FakeConnector(Side.APP, "default", clock)
    quickbooks = RequestIdFake(clock, batch_size=3)
    runner = Runner(
        store, {Side.APP: app, Side.QUICKBOOKS: quickbooks}, PolicySet.default(), clock, "default"
    )
    for n in range(customers):
        app.create(C, {"display_name": f"Customer {n}", "email": f"c{n}@example.test"})
    runner.poll(Side.APP, C)
    runner.decide_pending()
    return runner, quickbooks


def _apply(runner: Runner, clock: FakeClock) -> None:
    pipeline.apply_pending(runner.store, runner.connectors, clock, "default", in_flight=1)


def _pending(runner: Runner) -> list[str]:
    with runner.store.session() as s:
        return [r.op.op_id for r in s.ops("default", [OpStatus.PENDING])]


def test_a_batch_committed_but_not_recorded_is_sent_again_as_the_same_set(
    store: SqlStateStore, clock: FakeClock
) -> None:
    runner, quickbooks = _wired(store, clock, customers=6)
    first = _pending(runner)[0]
    quickbooks.batches_left, quickbooks.spares_left = 2, 0  # batches only, no spare singles
    quickbooks.kill_after = {1}  # the first batch request commits, then the worker dies
    with store.claim_ops([first]), pytest.raises(Killed):  # another worker holds the first op
        _apply(runner, clock)
    lost = quickbooks.requests[0]
    assert first not in lost and len(lost) == 2

    quickbooks.batches_left, quickbooks.spares_left = 10, 10
    runner.run_until_quiet()  # the restarted worker: the first op now free, so fresh batches differ

    assert any(sorted(r) == sorted(lost) for r in quickbooks.requests[1:]), "sent again as it went"
    names = sorted(c["display_name"] for c in quickbooks.all(C).values())
    assert names == [f"Customer {n}" for n in range(6)], "each customer created exactly once"
    assert _pending(runner) == []


def test_a_spare_single_write_killed_unrecorded_goes_alone_again_not_in_a_batch(
    store: SqlStateStore, clock: FakeClock
) -> None:
    runner, quickbooks = _wired(store, clock, customers=3)
    quickbooks.batches_left = 0  # the minute's batches are spent: the feed sends spare singles
    quickbooks.kill_after = {1}
    with pytest.raises(Killed):
        _apply(runner, clock)
    [killed] = quickbooks.requests[0]
    with store.session() as s:
        assert s.ops_by_id([killed])[killed].sent_as == SENT_SINGLE

    quickbooks.batches_left = 10  # the restart could batch all three: the one in doubt stays alone
    runner.run_until_quiet()

    assert [killed] in quickbooks.requests[1:]
    assert all(killed not in r for r in quickbooks.requests[1:] if len(r) > 1)
    assert len(quickbooks.all(C)) == 3, "no customer created twice"


def test_the_single_op_path_leaves_an_op_of_a_batch_in_doubt_to_its_batch(
    store: SqlStateStore, clock: FakeClock
) -> None:
    runner, quickbooks = _wired(store, clock, customers=3)
    quickbooks.kill_after = {1}
    with pytest.raises(Killed):
        _apply(runner, clock)
    lost = quickbooks.requests[0]
    with store.session() as s:
        assert {s.ops_by_id([o])[o].sent_as for o in lost} == {batch_key(lost)}

    # A queued apply message for one of them (the Dramatiq apply actor writes one op at a time).
    applied = apply_op(store, quickbooks, lost[0], clock.now())

    assert applied.outcome == Outcome.SKIPPED and len(quickbooks.requests) == 1
    runner.run_until_quiet()  # the sweep sends the batch whole
    assert len(quickbooks.all(C)) == 3 and sorted(quickbooks.requests[1]) == sorted(lost)
