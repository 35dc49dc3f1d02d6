"""Per-realm throttling: requests and batches per (shortenable) minute, in flight, and per second."""

from __future__ import annotations

import threading
import time
from collections import deque

from connectors.quickbooks.emulator.config import EmulatorConfig


class Throttle:
    """Sliding windows on the real monotonic clock, so a shortened minute is really short."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._minute: dict[str, deque[float]] = {}
        self._batch: dict[str, deque[float]] = {}
        self._second: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}

    @staticmethod
    def _within(window: deque[float], now: float, span: float) -> deque[float]:
        while window and window[0] <= now - span:
            window.popleft()
        return window

    def admit(self, realm: str, *, is_batch: bool) -> bool:
        """Count the request and say whether it may run; a refused request is not counted."""
        cfg = self.config
        now = time.monotonic()
        with self._lock:
            minute = self._within(self._minute.setdefault(realm, deque()), now, cfg.minute_seconds)
            batch = self._within(self._batch.setdefault(realm, deque()), now, cfg.minute_seconds)
            second = self._within(self._second.setdefault(realm, deque()), now, cfg.minute_seconds / 60.0)
            if len(minute) >= cfg.requests_per_minute:
                return False
            if is_batch and len(batch) >= cfg.batch_requests_per_minute:
                return False
            if cfg.requests_per_second is not None and len(second) >= cfg.requests_per_second:
                return False
            if self._in_flight.get(realm, 0) >= cfg.max_in_flight:
                return False
            minute.append(now)
            second.append(now)
            if is_batch:
                batch.append(now)
            self._in_flight[realm] = self._in_flight.get(realm, 0) + 1
            return True

    def release(self, realm: str) -> None:
        with self._lock:
            self._in_flight[realm] = max(0, self._in_flight.get(realm, 0) - 1)

    def reset(self) -> None:
        with self._lock:
            self._minute.clear()
            self._batch.clear()
            self._second.clear()
