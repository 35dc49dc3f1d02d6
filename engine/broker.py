"""The Dramatiq broker: Redis in production, the in-memory stub in one process (embedded mode)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

QUEUE = "ledgersync"
NAMESPACE = "ledgersync"


def make_broker(url: str | None) -> dramatiq.Broker:
    """A Redis broker for `redis://...`, else the in-process stub broker; set as Dramatiq's global one."""
    broker: dramatiq.Broker = (
        RedisBroker(url=url, namespace=NAMESPACE)  # type: ignore[no-untyped-call]
        if url
        else StubBroker()
    )
    dramatiq.set_broker(broker)
    return broker


def in_process_worker(broker: dramatiq.Broker, threads: int = 2) -> dramatiq.Worker:
    """Worker threads in this process, on either broker; call `.start()` and later `.stop()`."""
    return dramatiq.Worker(broker, queues={QUEUE}, worker_threads=threads, worker_timeout=100)


def wait_until_idle(broker: dramatiq.Broker, worker: dramatiq.Worker, timeout_ms: int = 60_000) -> None:
    """Embedded mode only: block until the queue (and its delay queue) is drained and the worker idle."""
    if not isinstance(broker, StubBroker):
        raise TypeError("wait_until_idle needs the in-process stub broker")
    for _ in range(3):  # delayed messages move to the main queue when due; drain both until stable
        broker.join(QUEUE, timeout=timeout_ms)
        broker.join(f"{QUEUE}.DQ", timeout=timeout_ms)
        worker.join()


def dead_letters(url: str) -> int:
    """Messages Dramatiq gave up on after their retries (kept a week in Redis), for `status`."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.zcard(f"{NAMESPACE}:{QUEUE}.XQ"))
    finally:
        client.close()
