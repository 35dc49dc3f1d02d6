"""Pending ops are read and applied a page at a time, so a backfill of any size holds one page of ops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import pipeline
from engine.clock import FakeClock
from engine.fakes.connector import FakeConnector
from engine.model import EntityType, Side
from engine.plan import OpStatus
from engine.runner import Runner
from policies import PolicySet
from tests.runner.test_apply_batch import BatchingFake, seed
from tests.support.stores import fresh_store

C, ITEM, INV = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE


@pytest.fixture
def wired(tmp_path: Path, clock: FakeClock, store_backend: str) -> Iterator[tuple[Runner, BatchingFake]]:
    with fresh_store(store_backend, tmp_path) as store:
        app = FakeConnector(Side.APP, "default", clock)
        quickbooks = BatchingFake(clock, batch_size=3)
        runner = Runner(
            store, {Side.APP: app, Side.QUICKBOOKS: quickbooks}, PolicySet.default(), clock, "default"
        )
        seed(app)  # 7 customers, 2 items, then an invoice of the first customer and both items
        for entity in runner.entities:
            runner.poll(Side.APP, entity)
        runner.decide_pending()
        yield runner, quickbooks


def test_pages_list_every_pending_op_once_oldest_first(wired: tuple[Runner, BatchingFake]) -> None:
    runner, _ = wired
    with runner.store.session() as s:
        everything = [r.op.op_id for r in s.ops("default", [OpStatus.PENDING])]
        paged: list[str] = []
        after = pipeline.FIRST
        while True:
            page, after = s.ops_page("default", [OpStatus.PENDING], after, 4)
            paged += [r.op.op_id for r in page]
            if not page:
                break
        assert len(everything) == 10 and paged == everything
        assert s.ops_page("default", [OpStatus.PENDING], after, 4) == ([], after)


def test_each_page_is_applied_in_its_own_waves_and_every_op_lands(wired: tuple[Runner, BatchingFake]) -> None:
    runner, quickbooks = wired
    outcomes = pipeline.apply_pending(runner.store, runner.connectors, runner.clock, "default", page=4)
    assert [o.outcome for o in outcomes] == ["applied"] * 10
    # Pages of 4 in planned order: CCCC, CCC+item, item+invoice. A batch never spans two pages, and the
    # item and the invoice of the last page go in two waves, each a lone single write (not a batch of one).
    assert [len(b) for b in quickbooks.batches] == [3, 3]
    assert quickbooks.writes == 10
    assert len(quickbooks.all(C)) == 7 and len(quickbooks.all(ITEM)) == 2 and len(quickbooks.all(INV)) == 1
    with runner.store.session() as s:
        assert s.ops("default", [OpStatus.PENDING]) == []
    assert runner.run_until_quiet().outcomes == {"applied": 1}, "only the invoice's total comes back"
