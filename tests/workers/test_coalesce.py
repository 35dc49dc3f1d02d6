"""Coalesced QuickBooks reads: requests within a window become one read, none waits for a poll."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engine.broker import in_process_worker, make_broker, wait_until_idle
from engine.coalesce import Gate, LocalGate, ReadRequests, RedisGate
from engine.jobs import Jobs
from engine.model import EntityType
from engine.state import InboxReport
from engine.workers import build_actors, coalesce_reads
from tests.workers.test_actors import World


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "redis"])
def gate(request: pytest.FixtureRequest) -> Iterator[Gate]:
    if request.param == "local":
        yield LocalGate()
        return
    client = redis.Redis(host="127.0.0.1", port=6379)
    prefix = f"ledgersync-test:{secrets.token_hex(4)}"
    try:
        yield RedisGate(client, prefix)
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


def test_requests_within_the_window_send_one_read_due_at_its_end(gate: Gate) -> None:
    clock, sent = Clock(), []
    reads = ReadRequests(gate, lambda key, delay: sent.append((key, delay)), window=2.0, clock=clock)
    assert reads.request("default")  # never read: at once
    assert not reads.request("default") and not reads.request("default")
    assert sent == [("default", 0)]
    reads.begin("default")  # the read starts: a request now is for the next read
    reads.done("default")
    clock.now += 0.5
    assert reads.request("default")
    assert not reads.request("default")
    assert sent[-1] == ("default", 1500)  # the rest of the window
    reads.begin("default")
    clock.now += 5
    assert reads.request("default")
    assert sent[-1] == ("default", 0)  # idle longer than the window: at once


def test_companies_are_gated_apart_and_a_failed_send_releases_the_gate(gate: Gate) -> None:
    sent: list[str] = []
    failing = [True]

    def send(key: str, delay: int) -> None:
        del delay
        if failing[0]:
            raise ConnectionError("broker down")
        sent.append(key)

    reads = ReadRequests(gate, send, window=1.0)
    with pytest.raises(ConnectionError):
        reads.request("one")
    failing[0] = False
    assert reads.request("one")  # not stuck behind the send that failed
    assert reads.request("two")
    assert sent == ["one", "two"]


def test_a_lost_read_holds_the_gate_only_for_a_while() -> None:
    clock = Clock()
    reads = ReadRequests(LocalGate(clock), lambda key, delay: None, window=1.0, clock=clock, hold=5.0)
    assert reads.request("default")
    clock.now += 4
    assert not reads.request("default")
    clock.now += 2
    assert reads.request("default")  # the message never ran: the gate expired


# the ingest actor, on the in-process broker


class Inbox:
    """The inbox the ingest actor reads: counts the reads (each one CDC call per realm)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.reads = 0
        self.lock = threading.Lock()

    def deliver(self) -> None:
        with self.world.store.session() as s:
            s.inbox_add(b"[]", self.world.clock.now())

    def ingest(self, limit: int = 100) -> InboxReport:
        with self.lock:
            self.reads += 1
        with self.world.store.session() as s:
            for entry in s.inbox_pending(limit):
                s.inbox_done(entry.id)
        return InboxReport()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    from tests.support.stores import fresh_store

    with fresh_store("sqlite", tmp_path) as store:
        yield World(store)


def test_deliveries_within_a_window_cost_one_read_and_none_waits_for_a_poll(world: World) -> None:
    inbox = Inbox(world)
    world.services.inbox = inbox
    broker = make_broker(None)
    actors = build_actors(broker, world.services)
    reads = coalesce_reads(world.services, actors, LocalGate(), window=0.5)
    worker = in_process_worker(broker)
    worker.start()
    try:
        inbox.deliver()  # a company idle for long: read at once
        reads.request("default")
        wait_until_idle(broker, worker)
        assert inbox.reads == 1
        for _ in range(10):  # ten deliveries within the window of that read: one read, at its end
            inbox.deliver()
            reads.request("default")
        wait_until_idle(broker, worker)
        assert inbox.reads == 2
        with world.store.session() as s:
            assert s.inbox_pending(10) == []  # none of them waits for a poll
        time.sleep(0.6)
        reads.request("default")  # the scheduled inbox check with nothing pending: no read
        wait_until_idle(broker, worker)
        assert inbox.reads == 2
        inbox.deliver()
        reads.request("default")
        wait_until_idle(broker, worker)
        assert inbox.reads == 3
    finally:
        worker.stop()
        broker.close()


class Sent:
    """Stands in for an actor: keeps the messages sent to it."""

    def __init__(self) -> None:
        self.messages: list[tuple[object, ...]] = []

    def send(self, *args: object) -> None:
        self.messages.append(args)


def test_the_probe_job_polls_only_what_moved_and_a_failed_probe_polls_nothing() -> None:
    from types import SimpleNamespace

    from engine.errors import UpstreamUnavailableError

    poll = Sent()
    actors = SimpleNamespace(poll=poll)
    answers: list[object] = [
        [EntityType.INVOICE, EntityType.CUSTOMER],
        [],
        UpstreamUnavailableError("app db down"),
    ]

    def probe() -> list[EntityType]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    jobs = Jobs(actors, "default", probe=probe)  # type: ignore[arg-type]
    for _ in range(3):
        jobs("app_probe")
    # in dependency order; then nothing moved; then the probe failed (the scheduled poll reports it)
    assert poll.messages == [("default", "app", "customer"), ("default", "app", "invoice")]


def test_a_read_delay_lets_a_trickle_share_one_read_even_from_idle(gate: Gate) -> None:
    # Cost-minded: every read waits `delay` after the first request it answers, idle or not.
    clock, sent = Clock(), []
    reads = ReadRequests(gate, lambda key, d: sent.append((key, d)), window=30.0, clock=clock, delay=30.0)
    assert reads.request("default")
    for _ in range(24):  # one change a second: all wait for the read already due
        clock.now += 1
        assert not reads.request("default")
    assert sent == [("default", 30_000)]
    clock.now += 6  # the read runs: the gate opens, and the next request waits a whole delay again
    reads.begin("default")
    reads.done("default")
    clock.now += 100
    assert reads.request("default")
    assert sent[-1] == ("default", 30_000)
