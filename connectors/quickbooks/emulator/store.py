"""The company's records: current rows, tombstones of deleted transactions, id counters, change feed."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
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


#: Query answers remembered at once (a few clients paging at the same time).
ANSWERS_KEPT = 16

#: What a row is looked up by in an index: the keys of its data (a name, the invoices it pays...).
Keys = Callable[[JsonDict], Iterable[str]]


@dataclass
class _Index:
    """Ids of one entity's rows by `keys_of` their data; built from `source` (the entity's rows dict)
    when it had `size` rows. Entries may be stale (a renamed record): lookups check the row."""

    keys_of: Keys
    source: dict[str, Row]
    size: int
    ids: dict[str, set[str]]

    def add(self, row_id: str, data: JsonDict) -> None:
        for key in self.keys_of(data):
            self.ids.setdefault(key, set()).add(row_id)

    def keep_up(self, rows: dict[str, Row], before: int) -> None:
        """After `put` or `delete` changed `rows` from `before` rows: still whole if it was whole
        then; else (rows written behind its back meanwhile) left to be rebuilt at the next lookup."""
        self.size = len(rows) if self.source is rows and self.size == before else -1


@dataclass
class Store:
    """All records of the one emulated realm. Callers hold `lock` around a whole request."""

    rows: dict[str, dict[str, Row]] = field(default_factory=dict)
    tombstones: dict[str, dict[str, datetime]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    listeners: list[Callable[[Change], None]] = field(default_factory=list)
    _hidden: set[tuple[str, str]] | None = None
    _indexes: dict[tuple[str, str], _Index] = field(default_factory=dict)
    #: Writes through `put` and `delete` per entity: a cached query answer is good while it stands.
    generations: dict[str, int] = field(default_factory=dict)
    _answers: dict[tuple[str, Hashable], tuple[tuple[int, int, int], list[Row]]] = field(default_factory=dict)

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

    def named(self, entity: str, name_field: str, name: str) -> list[Row]:
        """The rows of `entity` (hidden ones too) whose `name_field` is `name`, ignoring case: an
        index, not a scan, so a company of 100k customers checks a name as fast as one of ten."""

        def keys_of(data: JsonDict) -> list[str]:
            return [str(data.get(name_field, "")).casefold()]

        return self.indexed(entity, f"name:{name_field}", keys_of, name.casefold())

    def indexed(self, entity: str, name: str, keys_of: Keys, key: str) -> list[Row]:
        """The rows of `entity` (hidden ones too) that `keys_of` gives `key`, in id order, through the
        index called `name` (made on first use). It is rebuilt when the rows changed other than
        through `put` and `delete` (a company loaded, the benchmark's copies)."""
        rows = self.rows.get(entity, {})
        index = self._indexes.get((entity, name))
        if index is None or index.source is not rows or index.size != len(rows):
            index = _Index(keys_of, rows, len(rows), {})
            for row_id, row in rows.items():
                index.add(row_id, row.data)
            self._indexes[(entity, name)] = index
        found = [rows[i] for i in sorted(index.ids.get(key, ()), key=_id_order) if i in rows]
        return [r for r in found if key in keys_of(r.data)]

    def selected(self, entity: str, key: Hashable, select: Callable[[], list[Row]]) -> list[Row]:
        """`select()` (the rows of `entity` a query picks, in its order), remembered under `key` until
        `entity` changes: a client paging through 100k records with STARTPOSITION asks the same query
        a hundred times, and filtering and sorting every record each time made such a read quadratic.
        Not remembered inside a batch (what is hidden there changes item by item). A change made
        behind `put`'s back that adds or drops rows (a company loaded, the benchmark's copies) is seen
        by the count, as the indexes see it."""
        if self._hidden is not None:
            return select()
        rows = self.rows.get(entity, {})
        stamp = (self.generations.get(entity, 0), id(rows), len(rows))
        remembered = self._answers.get((entity, key))
        if remembered is not None and remembered[0] == stamp:
            return remembered[1]
        answer = select()
        if len(self._answers) >= ANSWERS_KEPT:
            self._answers.pop(next(iter(self._answers)))
        self._answers[(entity, key)] = (stamp, answer)
        return answer

    def put(self, entity: str, row: Row, operation: str) -> None:
        self.generations[entity] = self.generations.get(entity, 0) + 1
        entity_id = str(row.data["Id"])
        rows = self.rows.setdefault(entity, {})
        before = len(rows)
        rows[entity_id] = row
        for (indexed, _), index in self._indexes.items():
            if indexed == entity:
                index.add(entity_id, row.data)
                index.keep_up(rows, before)
        if self._hidden is not None and operation == "Create":
            self._hidden.add((entity, entity_id))
        self._emit(Change(entity, entity_id, operation, row.updated_at))

    def delete(self, entity: str, entity_id: str, at: datetime) -> None:
        self.generations[entity] = self.generations.get(entity, 0) + 1
        rows = self.rows.get(entity, {})
        before = len(rows)
        rows.pop(entity_id, None)
        for (indexed, _), index in self._indexes.items():
            if indexed == entity:
                index.keep_up(rows, before)  # the id stays listed; lookups skip ids not in the rows
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


def _id_order(row_id: str) -> tuple[int, str]:
    """Ids in creation order (numeric ids by value), as a scan of the rows would meet them."""
    return (int(row_id), "") if row_id.isdigit() else (1 << 62, row_id)
