"""Faults a test or a demo asks for: 5xx answers, timeouts after commit, latency, webhook mischief."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "server_error",
    "timeout_after_commit",
    "latency",
    "webhook_drop",
    "webhook_duplicate",
    "webhook_reorder",
]
FAULT_KINDS: tuple[str, ...] = (
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


class FaultPlan:
    """Armed faults, each firing for the next `count` matching requests (or webhook events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Armed] = []

    def arm(
        self, kind: str, count: int = 1, *, status: int = 503, delay: float = 0.0, path_contains: str = ""
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._armed.append(Armed(kind, count, status, delay, path_contains))

    def take(self, kind: str, path: str = "") -> Armed | None:
        """Consume one firing of the first armed fault of this kind matching the path."""
        with self._lock:
            for armed in self._armed:
                if armed.kind == kind and armed.path_contains in path:
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._armed.remove(armed)
                    return armed
        return None

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [vars(a).copy() for a in self._armed]
