"""Coalesced QuickBooks reads: requests within a window become one read, none waits for a poll."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from engine.broker import in_process_worker, make_broker, wait_until_idle
from engine.coalesce import Gate, LocalGate, ReadRequests, RedisGate
from engine.fakes.inbox import FakeInbox
from engine.jobs import Jobs, read_quickbooks
from engine.model import EntityType
from engine.settings import READ_SCHEDULES
from engine.workers import build_actors
from tests.support.samples import customer_event
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
    clock = Clock()
    reads = ReadRequests(gate, window=2.0, clock=clock)
    assert reads.request("default") == 0  # never read: at once
    assert reads.request("default") is None and reads.request("default") is None
    reads.begin("default")  # the read starts: a request now is for the next read
    reads.done("default")
    clock.now += 0.5
    assert reads.request("default") == 1500  # the rest of the window
    assert reads.request("default") is None
    reads.begin("default")
    clock.now += 5
    assert reads.request("default") == 0  # idle longer than the window: at once


class Ingest:
    """Stands in for the ingest actor: keeps what is sent to it, or fails like a broker that is down."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.failing = False

    def send(self, connection: str) -> None:
        self.send_with_options(args=(connection,), delay=0)

    def send_with_options(self, args: tuple[str], delay: int) -> None:
        if self.failing:
            raise ConnectionError("broker down")
        self.sent.append((args[0], delay))


def test_companies_are_gated_apart_and_a_failed_send_releases_the_gate(gate: Gate) -> None:
    from types import SimpleNamespace

    ingest = Ingest()
    actors: Any = SimpleNamespace(ingest=ingest)
    reads = ReadRequests(gate, window=1.0)
    ingest.failing = True
    with pytest.raises(ConnectionError):
        read_quickbooks(actors, "one", reads)
    ingest.failing = False
    read_quickbooks(actors, "one", reads)  # not stuck behind the send that failed
    read_quickbooks(actors, "two", reads)
    read_quickbooks(actors, "two", reads)  # already due
    assert ingest.sent == [("one", 0), ("two", 0)]


def test_a_lost_read_holds_the_gate_only_for_a_while() -> None:
    clock = Clock()
    reads = ReadRequests(LocalGate(clock), window=1.0, clock=clock, hold=5.0)
    assert reads.request("default") is not None
    clock.now += 4
    assert reads.request("default") is None
    clock.now += 2
    assert reads.request("default") is not None  # the message never ran: the gate expired


# the ingest actor, on the in-process broker


class Deliveries:
    """QuickBooks delivering webhooks to the fake inbox: one change of its own each."""

    def __init__(self, inbox: FakeInbox) -> None:
        self.inbox = inbox
        self.count = 0

    def deliver(self) -> None:
        self.count += 1
        self.inbox.notify(customer_event(str(self.count), connection="default"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    from tests.support.stores import fresh_store

    with fresh_store("sqlite", tmp_path) as store:
        yield World(store)


def test_deliveries_within_a_window_cost_one_read_and_none_waits_for_a_poll(world: World) -> None:
    inbox = world.services.inbox = FakeInbox(world.store, world.clock)
    webhooks = Deliveries(inbox)
    reads = world.services.reads = ReadRequests(LocalGate(), window=0.5)
    broker = make_broker(None)
    actors = build_actors(broker, world.services)
    worker = in_process_worker(broker)
    worker.start()
    try:
        webhooks.deliver()  # a company idle for long: read at once
        read_quickbooks(actors, "default", reads)
        wait_until_idle(broker, worker)
        assert inbox.reads == 1
        for _ in range(10):  # ten deliveries within the window of that read: one read, at its end
            webhooks.deliver()
            read_quickbooks(actors, "default", reads)
        wait_until_idle(broker, worker)
        assert inbox.reads == 2
        with world.store.session() as s:
            assert s.inbox_pending(10) == []  # none of them waits for a poll
        time.sleep(0.6)
        read_quickbooks(actors, "default", reads)  # the scheduled inbox check, nothing pending: no read
        wait_until_idle(broker, worker)
        assert inbox.reads == 2
        webhooks.deliver()
        read_quickbooks(actors, "default", reads)
        wait_until_idle(broker, worker)
        assert inbox.reads == 3
        with world.store.session() as s:  # every change journaled, and each one decided
            assert s.pending_records("default") == []
            counts = s.counts("default")
        assert set(counts.journal) == {"processed"} and counts.links == 12
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
    clock = Clock()
    reads = ReadRequests(gate, window=30.0, clock=clock, delay=30.0)
    assert reads.request("default") == 30_000
    for _ in range(24):  # one change a second: all wait for the read already due
        clock.now += 1
        assert reads.request("default") is None
    clock.now += 6  # the read runs: the gate opens, and the next request waits a whole delay again
    reads.begin("default")
    reads.done("default")
    clock.now += 100
    assert reads.request("default") == 30_000


def test_the_frugal_schedule_reads_a_trickle_of_thirty_edits_over_fifty_seconds_once(gate: Gate) -> None:
    # The trickle on `schedule.quickbooks_reads: frugal`: one edit every 5/3 s, each webhook
    # asking for a read; the first asks for the one read, due a minute later, which all the rest share.
    window, delay = READ_SCHEDULES["frugal"]
    clock = Clock()
    reads = ReadRequests(gate, window=window, clock=clock, delay=delay)
    due = [reads.request("default")]
    for _ in range(29):
        clock.now += 5 / 3
        due.append(reads.request("default"))
    assert due[0] == 60_000 and due[1:] == [None] * 29
