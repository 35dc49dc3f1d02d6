"""The threads that POST webhooks for every company: a few, shared, started at the first event.

A company's queue holds at most one turn at a time (waiting in the timetable, or being delivered), so
its events go out in order and a failed batch holds back only that company's later events. An idle
company costs no thread; 200 companies share `workers` threads.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time

import httpx

from connectors.quickbooks.emulator.webhooks import WebhookQueue

logger = logging.getLogger(__name__)
#: A turn that failed on an emulator bug is tried again after this long.
AFTER_A_BUG = 60.0


class Courier:
    def __init__(self, workers: int, timeout: float) -> None:
        self.workers = max(1, workers)
        self.timeout = timeout
        self._cond = threading.Condition()
        self._timetable: list[tuple[float, int, WebhookQueue]] = []
        self._order = itertools.count()
        self._booked: set[int] = set()  # id() of queues waiting in the timetable or being delivered
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def schedule(self, queue: WebhookQueue, delay: float) -> None:
        """Give `queue` a turn in `delay` seconds, unless it has one already (its turn will see what
        was queued meanwhile: a worker ending a turn checks for more under this same lock)."""
        with self._cond:
            if self._stopping or id(queue) in self._booked:
                return
            self._book(queue, delay)
            if not self._threads:
                for n in range(self.workers):
                    name = f"qbo-emulator-webhooks-{n}"
                    thread = threading.Thread(target=self._run, name=name, daemon=True)
                    self._threads.append(thread)
                    thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=10)

    def _book(self, queue: WebhookQueue, delay: float) -> None:
        self._booked.add(id(queue))
        heapq.heappush(self._timetable, (time.monotonic() + delay, next(self._order), queue))
        self._cond.notify_all()

    def _next_due(self) -> WebhookQueue | None:
        """The queue whose turn has come (None when stopping), waiting for one as long as needed."""
        with self._cond:
            while not self._stopping:
                if self._timetable:
                    due = self._timetable[0][0] - time.monotonic()
                    if due <= 0:
                        return heapq.heappop(self._timetable)[2]
                    self._cond.wait(due)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while (queue := self._next_due()) is not None:
                try:
                    delay = queue.deliver(client)
                except Exception:  # a bug must not kill a thread every company relies on
                    logger.exception("webhook delivery for realm %s broke", queue.config.realm_id)
                    delay = AFTER_A_BUG
                with self._cond:
                    self._booked.discard(id(queue))
                    if delay is None and queue.pending():
                        delay = queue.config.webhook_batch_window
                    if delay is not None and not self._stopping:
                        self._book(queue, delay)
