"""Coalesced reads: every request to read a company's QuickBooks changes within a window becomes one read.

A webhook delivery (or the scheduled inbox check) asks for a read (`engine.jobs.read_quickbooks`,
which asks `ReadRequests.request` when to send it). The first request claims the company's gate and
sends one `ingest` message, due at once if the company was last read `window` seconds ago or more,
else when that window ends; every request while the gate is held adds nothing (its webhook body is
already in the inbox). The `ingest` actor releases the gate
*before* it reads the inbox, so a body stored after the release is read by the next read (its request
claims the gate again) and a body stored before it is read by this one: none waits for a poll.

A company is thus read at most once per window, however many deliveries arrive: a burst costs one or
two CDC calls, a trickle one per window. With a `delay`, even an idle company's read waits that long
after its first request, so that the changes behind it share the read: a trickle shorter than the
delay costs one read in all. The gate expires by itself (`hold`), so a lost message
delays a read by that much at most; the scheduled inbox check and the CDC poll stay the fallback.

`LocalGate` serves one process (embedded mode), `RedisGate` every process sharing a broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

log = logging.getLogger(__name__)

#: How long a claimed gate lasts if its read never runs (a lost message), in seconds.
HOLD = 30.0


class Gate(Protocol):
    def claim(self, key: str, hold: float) -> bool:
        """Take the gate for `key` unless it is held; True if this caller took it."""
        ...

    def release(self, key: str) -> None: ...

    def last_read(self, key: str) -> float | None:
        """When `key` was last read (epoch seconds), if it was."""
        ...

    def mark_read(self, key: str, at: float) -> None: ...


class LocalGate:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, float] = {}
        self._read: dict[str, float] = {}

    def claim(self, key: str, hold: float) -> bool:
        with self._lock:
            now = self.clock()
            if self._held.get(key, 0.0) > now:
                return False
            self._held[key] = now + hold
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def last_read(self, key: str) -> float | None:
        with self._lock:
            return self._read.get(key)

    def mark_read(self, key: str, at: float) -> None:
        with self._lock:
            self._read[key] = max(at, self._read.get(key, at))


class RedisGate:
    def __init__(self, client: redis.Redis, prefix: str = "ledgersync:read") -> None:
        self.client = client
        self.prefix = prefix

    def claim(self, key: str, hold: float) -> bool:
        return bool(self.client.set(f"{self.prefix}:gate:{key}", "1", nx=True, px=max(1, round(hold * 1000))))

    def release(self, key: str) -> None:
        self.client.delete(f"{self.prefix}:gate:{key}")

    def last_read(self, key: str) -> float | None:
        value = self.client.get(f"{self.prefix}:last:{key}")
        return None if value is None else float(value)

    def mark_read(self, key: str, at: float) -> None:
        self.client.set(f"{self.prefix}:last:{key}", repr(at), ex=86_400)


class ReadRequests:
    """Turns read requests into at most one read per gate hold, and says when it is due (see the
    module doc). It sends nothing itself: the caller sends the read it is told to."""

    def __init__(
        self,
        gate: Gate,
        window: float,
        clock: Callable[[], float] = time.time,
        hold: float = HOLD,
        delay: float = 0.0,
    ) -> None:
        self.gate = gate
        self.window = window
        self.delay = delay
        self.clock = clock
        self.hold = max(hold, window + 1.0, delay + 1.0)

    def request(self, key: str) -> int | None:
        """Ask for a read of `key`: in how many milliseconds the caller is to send it, or None when
        one is already due (it will read this request's changes too). A caller that fails to send
        the read calls `cancel`, so the next request tries again."""
        if not self.gate.claim(key, self.hold):
            return None
        last = self.gate.last_read(key)
        due = 0.0 if last is None else last + self.window - self.clock()
        return round(max(self.delay, due, 0.0) * 1000)

    def cancel(self, key: str) -> None:
        """The read this request was to send could not be sent."""
        self.gate.release(key)

    def begin(self, key: str) -> None:
        """The read is starting: later requests schedule the next one."""
        self.gate.release(key)

    def done(self, key: str) -> None:
        """The read is about to call QuickBooks: the window starts now."""
        self.gate.mark_read(key, self.clock())
