"""The request log benchmarks and tests read: every API call with its endpoint, metered class and status,
and for a single-entity write the record it touched and the fields it changed.

An update that changed no field (only its SyncToken moved) is an echo: the client restated what
QuickBooks already had. `summary()` counts those as `unchanged_writes`.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

#: Fields every write moves or that only describe the answer: not a change of the record's content.
BOOKKEEPING = frozenset({"SyncToken", "MetaData", "sparse", "domain", "time"})

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
    #: "Customer 12": the record a successful single-entity write (create, update, delete) touched.
    record: str | None = None
    #: The top-level fields that write changed, sorted; None for a read, a failure or a replay.
    changed: tuple[str, ...] | None = None
    #: Answered from the stored answer of an earlier request with the same requestid.
    replayed: bool = False
    #: The company the call was for (the realm in its path); None for OAuth calls.
    realm: str | None = None


@dataclass(frozen=True)
class Write:
    """What the API layer learned about one write while running it (the log's extra columns)."""

    record: str | None = None
    changed: tuple[str, ...] | None = None
    replayed: bool = False


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[str, ...]:
    """The top-level fields whose values differ; a create or a delete changes every field it has."""
    old, new = before or {}, after or {}
    keys = (old.keys() | new.keys()) - BOOKKEEPING
    return tuple(sorted(k for k in keys if before is None or after is None or old.get(k) != new.get(k)))


class RequestLog:
    """Every call, in order, also kept by company so one company's counts do not scan the others'."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._by_realm: dict[str | None, list[LoggedRequest]] = {}

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            self._by_realm.setdefault(entry.realm, []).append(entry)

    def clear(self, realm: str | None = None) -> None:
        """Forget every entry, or only those of one company."""
        with self._lock:
            if realm is None:
                self._entries.clear()
                self._by_realm.clear()
            elif self._by_realm.pop(realm, None):
                self._entries = [e for e in self._entries if e.realm != realm]

    def summary(self, with_entries: bool = False, realm: str | None = None) -> dict[str, Any]:
        """Counts over every entry, or over one company's calls."""
        with self._lock:
            entries = list(self._entries if realm is None else self._by_realm.get(realm, ()))
        metered_ok = sum(1 for e in entries if e.metered_class == CORE_PLUS and 200 <= e.status < 300)
        out: dict[str, Any] = {
            "total": len(entries),
            "by_endpoint": dict(Counter(e.endpoint for e in entries)),
            "by_class": dict(Counter(e.metered_class for e in entries)),
            "by_status": {str(k): v for k, v in Counter(e.status for e in entries).items()},
            "metered": metered_ok,
            "unchanged_writes": sum(1 for e in entries if e.changed == ()),
        }
        if with_entries:
            out["entries"] = [asdict(e) for e in entries]
        return out
