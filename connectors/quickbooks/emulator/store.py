"""The company's records: current rows, tombstones of deleted transactions, id counters, change feed."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonDict = dict[str, Any]


@dataclass
class Row:
    """One stored record: its JSON as QuickBooks returns it, plus precise timestamps for CDC and query."""

    data: JsonDict
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Change:
    """One change, as a webhook would announce it."""

    entity: str
    entity_id: str
    operation: str  # Create, Update, Delete, Void, Merge
    at: datetime
    deleted_id: str | None = None


@dataclass
class Store:
    """All records of the one emulated realm. Callers hold `lock` around a whole request."""

    rows: dict[str, dict[str, Row]] = field(default_factory=dict)
    tombstones: dict[str, dict[str, datetime]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    listeners: list[Callable[[Change], None]] = field(default_factory=list)
    _hidden: set[tuple[str, str]] | None = None

    def next_id(self, entity: str) -> str:
        value = self.counters.get(entity, 0) + 1
        self.counters[entity] = value
        return str(value)

    def next_number(self, name: str, start: int) -> int:
        value = max(self.counters.get(name, start - 1) + 1, start)
        self.counters[name] = value
        return value

    def get(self, entity: str, entity_id: str) -> Row | None:
        if self._hidden is not None and (entity, entity_id) in self._hidden:
            return None
        return self.rows.get(entity, {}).get(entity_id)

    def is_deleted(self, entity: str, entity_id: str) -> bool:
        return entity_id in self.tombstones.get(entity, {})

    def all(self, entity: str) -> list[Row]:
        rows = list(self.rows.get(entity, {}).values())
        if self._hidden is not None:
            hidden = self._hidden
            rows = [r for r in rows if (entity, str(r.data["Id"])) not in hidden]
        return rows

    def put(self, entity: str, row: Row, operation: str) -> None:
        entity_id = str(row.data["Id"])
        self.rows.setdefault(entity, {})[entity_id] = row
        if self._hidden is not None and operation == "Create":
            self._hidden.add((entity, entity_id))
        self._emit(Change(entity, entity_id, operation, row.updated_at))

    def delete(self, entity: str, entity_id: str, at: datetime) -> None:
        self.rows.get(entity, {}).pop(entity_id, None)
        self.tombstones.setdefault(entity, {})[entity_id] = at
        self._emit(Change(entity, entity_id, "Delete", at))

    def snapshot(self, entity: str, entity_id: str) -> JsonDict | None:
        row = self.get(entity, entity_id)
        return copy.deepcopy(row.data) if row else None

    @contextmanager
    def isolated_batch(self) -> Iterator[None]:
        """Inside a batch, records created by earlier items stay invisible to later items."""
        self._hidden = set()
        try:
            yield
        finally:
            self._hidden = None

    def _emit(self, change: Change) -> None:
        for listener in self.listeners:
            listener(change)
