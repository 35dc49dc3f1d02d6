"""The request log benchmarks read: every API call with its endpoint, metered class and status."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

#: Intuit's App Partner Program classes: reads are metered (CorePlus), single writes are not (Core).
CORE_PLUS = "CorePlus"
CORE = "Core"
OAUTH = "OAuth"


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    endpoint: str  # e.g. "GET customer", "POST invoice", "query", "cdc", "batch", "token"
    metered_class: str
    status: int


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def summary(self, with_entries: bool = False) -> dict[str, Any]:
        with self._lock:
            entries = list(self._entries)
        metered_ok = sum(1 for e in entries if e.metered_class == CORE_PLUS and 200 <= e.status < 300)
        out: dict[str, Any] = {
            "total": len(entries),
            "by_endpoint": dict(Counter(e.endpoint for e in entries)),
            "by_class": dict(Counter(e.metered_class for e in entries)),
            "by_status": {str(k): v for k, v in Counter(e.status for e in entries).items()},
            "metered": metered_ok,
        }
        if with_entries:
            out["entries"] = [asdict(e) for e in entries]
        return out
