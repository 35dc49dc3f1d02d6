"""The runner's batch path over a batch-writing fake: what goes in a batch, how each outcome is recorded."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from engine.apply_batch import Batch, batch_groups, batch_key, paced
from engine.clock import FakeClock
from engine.errors import LedgersyncError, RecordRejectedError, UpstreamUnavailableError
from engine.fakes.connector import FakeConnector
from engine.model import EntityType, Side
from engine.pipeline import _Feed
from engine.plan import Op, OpKind, OpStatus
from engine.ports import Capabilities, WriteResult, batch_writer
from engine.runner import Runner
from engine.state import AuditAction
from policies import PolicySet
from tests.support.sample import CUSTOMERS, ITEMS, invoice_for
from tests.support.stores import fresh_store

C, ITEM, INV = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE


class BatchingFake(FakeConnector):
    """The fake QuickBooks side with `write_many`: each op written in turn, with per-op and whole faults."""

    def __init__(self, clock: FakeClock, batch_size: int) -> None:
        super().__init__(Side.QUICKBOOKS, "default", clock, computes_totals=True)
        self.batch_size = batch_size
        self.batches: list[list[str]] = []
        #: Names refused one by one (a per-item fault).
        self.refused: set[str] = set()
        #: Batches lost as a whole (the request failed; what it wrote stays written, unseen).
        self.lose_batches = 0

    def capabilities(self) -> Capabilities:
        return super().capabilities().model_copy(update={"batch_size": self.batch_size})

    def write_many(self, ops: Sequence[Op]) -> list[WriteResult | LedgersyncError]:
        self.batches.append([op.op_id for op in ops])
        results: list[WriteResult | LedgersyncError] = []
        for op in ops:
            if op.fields.get("display_name", op.fields.get("name")) in self.refused:
                results.append(RecordRejectedError(f"{op.entity} refused", code="6000"))
                continue
            try:
                results.append(self.write(op))  # replays by op id, like QuickBooks' requestid
            except LedgersyncError as exc:
                results.append(exc)
        if self.lose_batches:
            self.lose_batches -= 1
            lost = UpstreamUnavailableError("QuickBooks did not answer (POST /batch: ReadTimeout)")
            return [lost] * len(ops)
        return results


Wired = tuple[Runner, FakeConnector, "BatchingFake"]


@pytest.fixture
def wired(
    tmp_path: Path, clock: FakeClock, store_backend: str
) -> Iterator[tuple[Runner, FakeConnector, BatchingFake]]:
    with fresh_store(store_backend, tmp_path) as store:
        app = FakeConnector(Side.APP, "default", clock)
        quickbooks = BatchingFake(clock, batch_size=3)
        runner = Runner(
            store, {Side.APP: app, Side.QUICKBOOKS: quickbooks}, PolicySet.default(), clock, "default"
        )
        yield runner, app, quickbooks


def seed(app: FakeConnector, extra: int = 5) -> str:
    customers = [app.create(C, dict(c)) for c in CUSTOMERS]
    for n in range(extra):
        app.create(C, {"display_name": f"Customer {n:02}", "email": f"c{n:02}@example.test"})
    items = [app.create(ITEM, dict(i)) for i in ITEMS]
    return app.create(INV, invoice_for(customers[0], (items[0], items[1])))


def test_creates_of_customers_and_items_go_in_batches_of_the_connector_size_and_converge(
    wired: Wired,
) -> None:
    runner, app, quickbooks = wired
    seed(app)
    stats = runner.run_until_quiet()
    assert len(quickbooks.all(C)) == 7 and len(quickbooks.all(ITEM)) == 2 and len(quickbooks.all(INV)) == 1
    assert [len(b) for b in quickbooks.batches] == [3, 3, 3], "9 creates of names, 3 a batch"
    assert stats.outcomes == {"applied": 10 + 1}  # 10 writes to QuickBooks, the invoice's total back
    assert runner.run_until_quiet().applied == 0


def test_one_refused_op_is_parked_alone_and_the_rest_of_its_batch_applies(wired: Wired) -> None:
    runner, app, quickbooks = wired
    seed(app)
    quickbooks.refused = {"Customer 02"}
    runner.run_until_quiet()
    names = {c["display_name"] for c in quickbooks.all(C).values()}
    assert "Customer 02" not in names and len(names) == 6
    with runner.store.session() as s:
        parked = s.ops("default", [OpStatus.PARKED])
        history = s.history("default")
    assert [p.op.fields["display_name"] for p in parked] == ["Customer 02"]
    assert parked[0].last_error == "customer refused"
    assert sum(e.action is AuditAction.PARKED for e in history) == 1


def test_a_lost_batch_is_sent_again_as_the_same_ops_and_writes_nothing_twice(wired: Wired) -> None:
    runner, app, quickbooks = wired
    seed(app)
    quickbooks.lose_batches = 1
    runner.run_once()
    lost = quickbooks.batches[0]
    with runner.store.session() as s:
        tagged = [r for r in s.ops("default", [OpStatus.PENDING]) if r.op.op_id in lost]
    assert len(tagged) == 3
    assert all(r.sent_as == batch_key(lost) for r in tagged), "each op keeps the batch it went in"

    runner.run_until_quiet()

    assert any(sorted(b) == sorted(lost) for b in quickbooks.batches[1:]), (
        "the lost batch was sent again whole"
    )
    assert len(quickbooks.all(C)) == 7 and len(quickbooks.all(ITEM)) == 2 and len(quickbooks.all(INV)) == 1
    assert quickbooks.writes == 7 + 2 + 1, "the lost batch's writes were replayed, not redone"


def test_batch_groups_keep_a_lost_batch_whole_and_split_the_rest_by_size(wired: Wired) -> None:
    runner, app, quickbooks = wired
    seed(app)
    quickbooks.lose_batches = 1
    runner.run_once()
    for n in range(4):
        app.create(C, {"display_name": f"Late {n}", "email": f"late{n}@example.test"})
    runner.poll(Side.APP, C)
    runner.decide_pending()
    with runner.store.session() as s:
        pending = [r for r in s.ops("default", [OpStatus.PENDING]) if r.op.kind is OpKind.CREATE]
    groups = batch_groups([r for r in pending if r.op.entity is C], 3)
    assert sorted(groups[0]) == sorted(quickbooks.batches[0])
    assert [len(g) for g in groups] == [3, 3, 1]


def test_single_writes_stay_the_default(wired: Wired) -> None:
    runner, app, quickbooks = wired
    quickbooks.batch_size = 1
    assert batch_writer(quickbooks) is None and batch_writer(app) is None
    seed(app)
    runner.run_until_quiet()
    assert quickbooks.batches == [] and len(quickbooks.all(C)) == 7


def test_a_lone_create_is_written_singly_not_as_a_metered_batch_of_one(wired: Wired) -> None:
    runner, app, quickbooks = wired
    app.create(C, {"display_name": "Only One", "email": "one@example.test"})
    runner.run_until_quiet()
    assert quickbooks.batches == [] and len(quickbooks.all(C)) == 1


class PacedFake(BatchingFake):
    """A BatchingFake with a budget to report: `batches` batch requests, then single writes only."""

    def __init__(self, clock: FakeClock, batch_size: int, batches: int) -> None:
        super().__init__(clock, batch_size)
        self.batches_left = batches
        self.spares: list[str] = []
        self.plain: list[str] = []

    def room(self) -> tuple[int, int, float]:
        return (self.batches_left, 100, 0.0)

    def write_many(self, ops: Sequence[Op]) -> list[WriteResult | LedgersyncError]:
        assert self.batches_left > 0, "a batch was sent with no batch left in the minute"
        self.batches_left -= 1
        return super().write_many(ops)

    def write_spare(self, op: Op) -> WriteResult:
        self.spares.append(op.op_id)
        return self.write(op)


def test_a_paced_writer_gets_batches_while_the_minute_allows_them_then_spare_single_writes(
    tmp_path: Path, clock: FakeClock, store_backend: str
) -> None:
    with fresh_store(store_backend, tmp_path) as store:
        app = FakeConnector(Side.APP, "default", clock)
        quickbooks = PacedFake(clock, batch_size=3, batches=2)
        assert paced(quickbooks) is not None and paced(BatchingFake(clock, 3)) is None
        runner = Runner(
            store, {Side.APP: app, Side.QUICKBOOKS: quickbooks}, PolicySet.default(), clock, "default"
        )
        seed(app, extra=8)  # 12 customers and items, then an invoice
        stats = runner.run_until_quiet()
        assert [len(b) for b in quickbooks.batches] == [3, 3], "two batches, all the minute allowed"
        assert len(quickbooks.spares) == 12 - 6 + 1, "the other names and the invoice went singly, as spares"
        assert (
            len(quickbooks.all(C)) == 10 and len(quickbooks.all(ITEM)) == 2 and len(quickbooks.all(INV)) == 1
        )
        assert quickbooks.writes == 13, "each record written once"
        assert stats.outcomes == {"applied": 13 + 1}
        assert runner.run_until_quiet().applied == 0


def test_a_lost_batch_is_never_split_into_single_writes(
    tmp_path: Path, clock: FakeClock, store_backend: str
) -> None:
    with fresh_store(store_backend, tmp_path) as store:
        app = FakeConnector(Side.APP, "default", clock)
        quickbooks = PacedFake(clock, batch_size=3, batches=1)
        runner = Runner(
            store, {Side.APP: app, Side.QUICKBOOKS: quickbooks}, PolicySet.default(), clock, "default"
        )
        seed(app, extra=1)
        quickbooks.lose_batches = 1
        runner.run_once()
        lost = quickbooks.batches[0]
        assert not set(lost) & set(quickbooks.spares)
        quickbooks.batches_left = 1
        runner.run_until_quiet()
        assert sorted(quickbooks.batches[1]) == sorted(lost), "sent again whole, as the same batch"
        assert not set(lost) & set(quickbooks.spares)
        assert (
            len(quickbooks.all(C)) == 3 and len(quickbooks.all(ITEM)) == 2 and len(quickbooks.all(INV)) == 1
        )


def test_the_feed_never_hands_out_more_batches_than_the_budget_has_room_for(clock: FakeClock) -> None:
    class StaleRoom(PacedFake):
        """The budget's room as it looks before any handed-out request has started."""

        def room(self) -> tuple[int, int, float]:
            return (1, 2, 0.0)

    ops = [
        Op(
            op_id=f"op{i}",
            connection="default",
            link_id=f"l{i}",
            entity=C,
            side=Side.QUICKBOOKS,
            kind=OpKind.CREATE,
            fields={"display_name": f"N{i}"},
            reason="test",
        )
        for i in range(9)
    ]
    batches = [Batch(tuple(ops[i : i + 3]), tuple(ops[i : i + 3]), as_batch=True) for i in (0, 3, 6)]
    marked: list[dict[str, str]] = []
    feed = _Feed(StaleRoom(clock, 3, batches=1), batches, marked.append)
    first, second, third = feed.next(), feed.next(), feed.next()
    assert first is not None and first[1] is False and len(first[0].ops) == 3, "the one free batch slot"
    assert second is not None and second[1] is True and second[0].ops == (ops[8],), "then a spare single"
    assert third is not None and third[1] is True and third[0].ops == (ops[7],)
    assert marked[0] == {"op6": batch_key(["op6", "op7"]), "op7": batch_key(["op6", "op7"]), "op8": "single"}
    assert marked[1] == {"op6": "single", "op7": "single"}, "each split stored before it is handed out"
    feed.sent(False)  # the batch was answered: the room the budget reports is the room there is
    fourth = feed.next()
    assert fourth is not None and fourth[1] is False and fourth[0].ops == tuple(ops[3:6])


def test_a_held_company_leaves_its_writes_pending_for_later_instead_of_holding_the_thread(
    tmp_path: Path, clock: FakeClock
) -> None:
    class Held(PacedFake):
        """A company in a 429's penalty: no room for the next 60 s."""

        held = True

        def room(self) -> tuple[int, int, float]:
            return (0, 0, 60.0) if self.held else super().room()

    with fresh_store("sqlite", tmp_path) as store:
        app = FakeConnector(Side.APP, "default", clock)
        quickbooks = Held(clock, batch_size=3, batches=10)
        runner = Runner(
            store, {Side.APP: app, Side.QUICKBOOKS: quickbooks}, PolicySet.default(), clock, "default"
        )
        seed(app)
        runner.poll_new(Side.APP, C)
        runner.decide_pending()
        assert runner.apply_pending(patience=2.0) == 0 and quickbooks.writes == 0
        with store.session() as s:
            waiting = len(s.ops("default", [OpStatus.PENDING]))
        assert waiting == len(app.all(C)), "still pending, none sent or lost"
        quickbooks.held = False  # the penalty is over: the next kick sends them
        assert runner.apply_pending(patience=2.0) == waiting and len(quickbooks.all(C)) == waiting
