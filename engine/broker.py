"""The Dramatiq broker: Redis in production, the in-memory stub in one process (embedded mode)."""

from __future__ import annotations

from itertools import islice
from typing import Any, NamedTuple

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

QUEUE = "ledgersync"
#: The scheduler's rounds (every connection's scheduled polls, kicks, sweeps: their actors' queue) wait
#: on a queue of their own: each worker takes from both queues, so a round for 200 companies never
#: stands in front of an edit's messages (a webhook's read, a probe's poll, reconcile, apply) on one
#: first-in-first-out list.
SCHEDULED = f"{QUEUE}_scheduled"
QUEUES = (QUEUE, SCHEDULED)
NAMESPACE = "ledgersync"


def make_broker(url: str | None) -> dramatiq.Broker:
    """A Redis broker for `redis://...`, else the in-process stub broker; set as Dramatiq's global one."""
    broker: dramatiq.Broker = (
        RedisBroker(url=url, namespace=NAMESPACE)  # type: ignore[no-untyped-call]
        if url
        else StubBroker()
    )
    dramatiq.set_broker(broker)
    declare_queues(broker)
    return broker


def declare_queues(broker: dramatiq.Broker) -> None:
    for name in QUEUES:
        broker.declare_queue(name)


def in_process_worker(broker: dramatiq.Broker, threads: int = 2) -> dramatiq.Worker:
    """Worker threads in this process, on either broker; call `.start()` and later `.stop()`."""
    return dramatiq.Worker(broker, queues=set(QUEUES), worker_threads=threads, worker_timeout=100)


def wait_until_idle(broker: dramatiq.Broker, worker: dramatiq.Worker, timeout_ms: int = 60_000) -> None:
    """Embedded mode only: block until the queue (and its delay queue) is drained and the worker idle."""
    if not isinstance(broker, StubBroker):
        raise TypeError("wait_until_idle needs the in-process stub broker")
    for _ in range(3):  # delayed messages move to the main queue when due; drain both until stable
        for name in QUEUES:
            broker.join(name, timeout=timeout_ms)
            broker.join(f"{name}.DQ", timeout=timeout_ms)
        worker.join()


def dead_letters(url: str) -> int:
    """Messages Dramatiq gave up on after their retries (kept a week in Redis), for `status`."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return sum(int(client.zcard(f"{NAMESPACE}:{name}.XQ")) for name in QUEUES)
    finally:
        client.close()


#: Messages read per queue for /metrics; a deeper queue is counted whole but aged from these.
QUEUED_SAMPLE = 10_000


class Queued(NamedTuple):
    """One message waiting in (or being worked off) a queue: `queue` is one of QUEUES or its delay queue."""

    queue: str
    actor: str
    args: tuple[Any, ...]
    #: When it was enqueued, in milliseconds since the epoch.
    enqueued_ms: int


def queued(broker: dramatiq.Broker) -> tuple[list[Queued], dict[str, int]]:
    """The messages on our queues (at most QUEUED_SAMPLE of each) and each queue's full length."""
    names = tuple(n for name in QUEUES for n in (name, f"{name}.DQ"))
    found: list[Queued] = []
    lengths: dict[str, int] = {}
    for name in names:
        if isinstance(broker, StubBroker):
            if name not in broker.queues:
                lengths[name] = 0
                continue
            waiting = broker.queues[name]
            with waiting.mutex:
                raw: list[bytes] = list(waiting.queue)[:QUEUED_SAMPLE]
                lengths[name] = len(waiting.queue)
        elif isinstance(broker, RedisBroker):
            # Every message not yet acknowledged is in the .msgs hash (waiting or being worked on).
            key = f"{broker.namespace}:{name}.msgs"
            lengths[name] = int(broker.client.hlen(key))
            raw = [value for _, value in islice(broker.client.hscan_iter(key), QUEUED_SAMPLE)]
        else:
            continue
        for data in raw:
            message = dramatiq.Message.decode(data)
            found.append(Queued(name, message.actor_name, tuple(message.args), message.message_timestamp))
    return found, lengths
