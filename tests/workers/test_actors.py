"""The Dramatiq actors in embedded mode (stub broker, worker threads) and on the real Redis broker."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dramatiq
import pytest
import redis

from engine.broker import QUEUES, in_process_worker, make_broker, wait_until_idle
from engine.clock import FakeClock
from engine.errors import UpstreamUnavailableError
from engine.fakes.connector import FakeConnector
from engine.model import EntityType, Side
from engine.plan import OpStatus
from engine.runner import ORDER
from engine.store import SqlStateStore
from engine.workers import Actors, Services, build_actors
from policies import PolicySet
from tests.support.sample import CUSTOMERS, ITEMS, invoice_for
from tests.support.stores import fresh_store

C, INV = EntityType.CUSTOMER, EntityType.INVOICE


class World:
    def __init__(self, store: SqlStateStore) -> None:
        self.clock = FakeClock(datetime(2026, 11, 2, tzinfo=UTC))
        self.sides = {
            Side.APP: FakeConnector(Side.APP, "default", self.clock),
            Side.QUICKBOOKS: FakeConnector(Side.QUICKBOOKS, "default", self.clock, computes_totals=True),
        }
        self.services = Services(
            store=store,
            policy=PolicySet.default(),
            clock=self.clock,
            connectors=lambda _connection: self.sides,
        )
        self.store = store

    def seed(self) -> str:
        app = self.sides[Side.APP]
        customers = [app.create(C, dict(c)) for c in CUSTOMERS]
        items = [app.create(EntityType.ITEM, dict(i)) for i in ITEMS]
        return app.create(INV, invoice_for(customers[0], (items[0], items[1])))

    def poll_everything(self, actors: Actors) -> None:
        for entity in ORDER:
            for side in Side:
                actors.poll.send("default", side.value, entity.value)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with fresh_store("sqlite", tmp_path) as store:
        yield World(store)


def run_embedded(world: World, rounds: int = 4) -> None:
    broker = make_broker(None)
    actors = build_actors(broker, world.services)
    worker = in_process_worker(broker)
    worker.start()
    try:
        for _ in range(rounds):  # what the scheduler does: poll both sides, then re-scan
            world.poll_everything(actors)
            wait_until_idle(broker, worker)
            actors.kick.send("default")
            wait_until_idle(broker, worker)
    finally:
        worker.stop()
        broker.close()


def test_embedded_workers_sync_the_sample_book(world: World):
    invoice = world.seed()
    run_embedded(world)
    qbo = world.sides[Side.QUICKBOOKS]
    assert len(qbo.all(C)) == 2 and len(qbo.all(INV)) == 1
    assert world.sides[Side.APP].get(INV, invoice)["total"] == Decimal("339.98")  # type: ignore[index]
    with world.store.session() as s:
        assert s.ops("default", [OpStatus.PENDING, OpStatus.PARKED, OpStatus.WAITING]) == []
        assert s.pending_records("default") == []


def test_retriable_failures_are_retried_by_the_workers_until_applied_once(world: World):
    world.seed()
    world.sides[Side.QUICKBOOKS].fail_next(3, UpstreamUnavailableError)
    world.sides[Side.QUICKBOOKS].fail_after_commit(2)
    run_embedded(world, rounds=6)
    qbo = world.sides[Side.QUICKBOOKS]
    assert len(qbo.all(C)) == 2 and len(qbo.all(EntityType.ITEM)) == 2 and len(qbo.all(INV)) == 1


def test_a_repeated_message_is_harmless(world: World):
    world.seed()
    run_embedded(world)
    writes = world.sides[Side.QUICKBOOKS].writes + world.sides[Side.APP].writes
    run_embedded(world, rounds=2)
    assert world.sides[Side.QUICKBOOKS].writes + world.sides[Side.APP].writes == writes


def test_workers_on_the_real_redis_broker(world: World):
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.ping()
    finally:
        client.close()
    namespace = f"ledgersync-test-{secrets.token_hex(4)}"
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url="redis://127.0.0.1:6379/0", namespace=namespace)  # type: ignore[no-untyped-call]
    dramatiq.set_broker(broker)
    actors = build_actors(broker, world.services)
    world.seed()
    worker = dramatiq.Worker(broker, queues=set(QUEUES), worker_threads=2, worker_timeout=100)
    worker.start()

    def drain() -> None:
        for name in QUEUES:
            broker.join(name, timeout=60_000)
        worker.join()

    try:
        for _ in range(4):
            world.poll_everything(actors)
            drain()
            actors.kick.send("default")
            drain()
    finally:
        worker.stop()
        broker.flush_all()
        broker.close()
    assert len(world.sides[Side.QUICKBOOKS].all(INV)) == 1
