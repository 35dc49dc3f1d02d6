"""The backfill's steps after the match (engine.backfill): pages decided while the previous one is
written, writes recorded a few answers to a transaction, and settling that stops at the first pass that
writes nothing."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.apply_batch import Batch, Result
from engine.backfill import read_both_sides, settle, write_pending
from engine.clock import FakeClock
from engine.fakes.connector import FakeConnector
from engine.model import EntityType, Side
from engine.pipeline import gather
from engine.plan import Op, OpKind, OpStatus
from engine.ports import ChangePage, Journaled
from engine.runner import Runner, RunStats
from policies import PolicySet
from tests.runner.test_apply_batch import BatchingFake, seed
from tests.support.stores import fresh_store

C, ITEM, INV = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE


class CountingApp(FakeConnector):
    """The fake app side, counting the reads of its changes (one per entity and pass when nothing is new)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(Side.APP, "default", clock)
        self.reads = 0

    def read_changes(
        self, entity: EntityType, cursor: str | None, journaled: Journaled | None = None
    ) -> ChangePage:
        self.reads += 1
        return super().read_changes(entity, cursor, journaled)


@pytest.fixture
def wired(
    tmp_path: Path, clock: FakeClock, store_backend: str
) -> Iterator[tuple[Runner, CountingApp, BatchingFake]]:
    with fresh_store(store_backend, tmp_path) as store:
        app = CountingApp(clock)
        quickbooks = BatchingFake(clock, batch_size=3)
        runner = Runner(
            store, {Side.APP: app, Side.QUICKBOOKS: quickbooks}, PolicySet.default(), clock, "default"
        )
        seed(app)  # 7 customers, 2 items, then an invoice of the first customer and both items
        yield runner, app, quickbooks


def test_pages_are_decided_and_written_until_nothing_is_left_and_nothing_twice(
    wired: tuple[Runner, CountingApp, BatchingFake],
) -> None:
    runner, _, quickbooks = wired
    stats = RunStats()
    read_both_sides(runner, stats)
    written: list[int] = []
    # 10 creates in QuickBooks, and the invoice's total QuickBooks answered written back to the app.
    assert write_pending(runner, stats, written.append, page=3) == 11
    assert sum(written) == 11 and len(written) > 2, "several rounds of pages"
    assert len(quickbooks.all(C)) == 7 and len(quickbooks.all(ITEM)) == 2 and len(quickbooks.all(INV)) == 1
    assert quickbooks.writes == 10, "each record written once"
    with runner.store.session() as s:
        assert s.ops("default", [OpStatus.PENDING]) == [] and s.count_pending_records("default") == 0


def test_settling_stops_at_the_first_pass_that_writes_nothing(
    wired: tuple[Runner, CountingApp, BatchingFake],
) -> None:
    runner, app, quickbooks = wired
    stats = RunStats()
    read_both_sides(runner, stats)
    write_pending(runner, stats, page=3)
    # What the writes changed besides the records they wrote (a payment's new invoice balance, say):
    # here an accountant's edit in QuickBooks meanwhile.
    customer = next(iter(quickbooks.all(C)))
    quickbooks.edit(C, customer, display_name="Renamed In QuickBooks")
    app.reads = 0

    more = RunStats()
    settle(runner, more, page=3)

    # Pass 1 reads the edit (and the writes' echoes) and writes it to the app; pass 2 reads that write's
    # echo back and writes nothing: no third pass only to read both sides again.
    assert more.outcomes == {"applied": 1} and app.reads == 2 * len(runner.entities)
    assert "Renamed In QuickBooks" in {c["display_name"] for c in app.all(C).values()}
    assert runner.run_until_quiet().applied == 0, "settled: a sync has nothing left to write"


def _answer(ops: int) -> tuple[Batch, list[Result]]:
    op = Op(
        op_id="op",
        connection="default",
        link_id="link",
        entity=C,
        side=Side.QUICKBOOKS,
        kind=OpKind.CREATE,
        reason="test",
    )
    return Batch((op,) * ops, (op,) * ops, as_batch=ops > 1), []


def test_answers_that_come_back_close_together_are_taken_together() -> None:
    answers: queue.SimpleQueue[tuple[Batch, list[Result]] | None] = queue.SimpleQueue()
    for size in (30, 1, 1):
        answers.put(_answer(size))
    assert [len(a[0].ops) for a in gather(answers, 10, window=0.2) if a] == [30, 1, 1]

    # The most ops at once: the answer that reaches it closes the group, the next waits for the next.
    for size in (30, 30, 30):
        answers.put(_answer(size))
    assert [len(a[0].ops) for a in gather(answers, 10, window=0.2, at_most=50) if a] == [30, 30]
    assert [len(a[0].ops) for a in gather(answers, 10, window=0.01) if a] == [30]


def test_gathering_does_not_wait_once_every_sender_is_done() -> None:
    answers: queue.SimpleQueue[tuple[Batch, list[Result]] | None] = queue.SimpleQueue()
    answers.put(_answer(1))
    answers.put(None)
    answers.put(None)
    started = time.monotonic()
    assert gather(answers, 2, window=5.0)[1:] == [None, None]
    assert time.monotonic() - started < 1.0
