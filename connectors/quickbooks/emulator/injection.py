"""Faults a test or a demo asks for: 429 and 5xx answers, timeouts after commit, latency, webhook mischief.

A fault fires for the next `count` matching requests (or webhook events), or, armed with `seconds`, for
every matching one during that many real seconds (a storm). The plan counts what fired, by kind, and
lists the requests it is holding back (latency, timeout after commit), so a test can act while a
client waits on one, such as killing that client's process.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "timeout_after_commit",
    "latency",
    "webhook_drop",
    "webhook_duplicate",
    "webhook_reorder",
]
FAULT_KINDS: tuple[str, ...] = (
    "rate_limit",
    "server_error",
    "timeout_after_commit",
    "latency",
    "webhook_drop",
    "webhook_duplicate",
    "webhook_reorder",
)


@dataclass
class Armed:
    kind: str
    remaining: int
    status: int = 503
    delay: float = 0.0
    path_contains: str = ""
    #: Monotonic deadline of a timed fault (armed with `seconds`); its count is not consumed.
    until: float | None = None


@dataclass(frozen=True)
class Held:
    """A request the emulator is holding back on purpose, and the client address waiting for it."""

    kind: str
    client: str
    path: str


class FaultPlan:
    """Armed faults, what fired, and what is being held."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Armed] = []
        self._fired: Counter[str] = Counter()
        self._held: list[Held] = []

    def arm(
        self,
        kind: str,
        count: int = 1,
        *,
        status: int = 503,
        delay: float = 0.0,
        path_contains: str = "",
        seconds: float | None = None,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be more than 0")
        until = None if seconds is None else time.monotonic() + seconds
        with self._lock:
            self._armed.append(Armed(kind, count, status, delay, path_contains, until))

    def take(self, kind: str, path: str = "") -> Armed | None:
        """Consume one firing of the first armed fault of this kind matching the path."""
        with self._lock:
            self._expire(time.monotonic())
            for armed in self._armed:
                if armed.kind == kind and armed.path_contains in path:
                    if armed.until is None:
                        armed.remaining -= 1
                        if armed.remaining <= 0:
                            self._armed.remove(armed)
                    self._fired[kind] += 1
                    return armed
        return None

    @contextmanager
    def holding(self, kind: str, client: str, path: str) -> Iterator[None]:
        """Listed in `held()` while the body runs (while the emulator keeps the client waiting)."""
        held = Held(kind, client, path)
        with self._lock:
            self._held.append(held)
        try:
            yield
        finally:
            with self._lock:
                self._held.remove(held)

    def clear(self) -> None:
        """Disarm every fault (what fired stays counted)."""
        with self._lock:
            self._armed.clear()

    def pending(self) -> list[dict[str, object]]:
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            return [
                {
                    "kind": a.kind,
                    "remaining": a.remaining,
                    "status": a.status,
                    "delay": a.delay,
                    "path_contains": a.path_contains,
                    "seconds_left": None if a.until is None else round(a.until - now, 3),
                }
                for a in self._armed
            ]

    def fired(self) -> dict[str, int]:
        with self._lock:
            return dict(self._fired)

    def held(self) -> list[dict[str, str]]:
        with self._lock:
            return [vars(h).copy() for h in self._held]

    def _expire(self, now: float) -> None:
        self._armed = [a for a in self._armed if a.until is None or a.until > now]
