"""Rows become values through pydantic: every field a model reads from a column has that column."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from engine.model import EntityType
from engine.plan import Op
from engine.state import (
    AuditEntry,
    Conflict,
    Connection,
    Cursor,
    InboxEntry,
    JournalEntry,
    LedgerEntry,
    Link,
    OpRecord,
    ParkedRecord,
    Snapshot,
)
from engine.store import rows
from engine.store import tables as t

#: model, its table, the fields built from something other than a column of the same name
READS = [
    (Connection, t.connections, ()),
    (Link, t.links, ()),
    (Snapshot, t.snapshots, ()),
    (JournalEntry, t.journal, ("event",)),
    (Op, t.ops, ()),
    (OpRecord, t.ops, ("op",)),
    (LedgerEntry, t.ledger, ("fields", "values")),
    (Conflict, t.conflicts, ()),
    (Cursor, t.cursors, ()),
    (AuditEntry, t.audit, ()),
    (InboxEntry, t.inbox, ("body",)),
    (ParkedRecord, t.parked_records, ()),
]


@pytest.mark.parametrize(("model", "table", "derived"), READS, ids=[m.__name__ for m, _, _ in READS])
def test_each_field_read_from_a_row_has_its_column(
    model: type[BaseModel], table: Any, derived: tuple[str, ...]
) -> None:
    assert set(rows.columns(model, *derived)) <= set(table.c.keys())


def test_a_row_is_validated_so_its_strings_become_the_model_types() -> None:
    row = {"id": "l1", "connection": "c", "entity": "customer", "app_id": "7", "quickbooks_id": None, "x": 1}
    link = rows.from_row(Link, rows.columns(Link), row)  # type: ignore[arg-type]  # a dict stands in
    assert link == Link(id="l1", connection="c", entity=EntityType.CUSTOMER, app_id="7")
    assert link.entity is EntityType.CUSTOMER
