"""Ops keep their order and history; the ledger remembers our writes; one open conflict per field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from engine.errors import VersionConflictError
from engine.model import EntityType, Side
from engine.plan import ConflictPolicy, FieldConflict, Op, OpKind, OpStatus
from engine.state import ConflictStatus, LedgerEntry
from engine.store import NotStoredError, SqlStateStore
from engine.store.session import SqlSession
from tests.support.samples import CONNECTION, at

INVOICE = EntityType.INVOICE


def make_op(s: SqlSession, op_id: str, link_id: str | None = None, **changes: object) -> Op:
    if link_id is None:
        link_id = s.create_link(CONNECTION, INVOICE, f"app-{op_id}", None).id
    values: dict[str, object] = {
        "op_id": op_id,
        "connection": CONNECTION,
        "link_id": link_id,
        "entity": INVOICE,
        "side": Side.QUICKBOOKS,
        "kind": OpKind.CREATE,
        "fields": {"doc_number": "1001", "total": "250.00", "txn_date": "2026-05-01"},
        "reason": "created in the app",
    }
    values.update(changes)
    return Op.model_validate(values)


def test_an_op_is_stored_pending_and_read_back(store: SqlStateStore) -> None:
    with store.session() as s:
        op = make_op(s, "op-1", external_id=None, expected_seq=None)
        s.add_op(op, at(1))
    with store.session() as s:
        record = s.get_op("op-1")
        assert s.get_op("op-unknown") is None
    assert record is not None
    assert record.op == op
    assert (record.status, record.attempts, record.last_error) == (OpStatus.PENDING, 0, None)
    assert record.created_at == record.updated_at == at(1)


def test_op_fields_come_back_in_json_form(store: SqlStateStore) -> None:
    python_form = {"total": Decimal("250.00"), "txn_date": date(2026, 5, 1), "lines": ({"amount": "1.00"},)}
    with store.session() as s:
        s.add_op(make_op(s, "op-1", fields=python_form, kind=OpKind.UPDATE, expected_seq=4), at(1))
        record = s.get_op("op-1")
    assert record is not None
    assert record.op.fields == {"total": "250.00", "txn_date": "2026-05-01", "lines": [{"amount": "1.00"}]}
    assert record.op.expected_seq == 4


def test_adding_a_stored_op_again_changes_nothing(store: SqlStateStore) -> None:
    with store.session() as s:
        op = make_op(s, "op-1")
        s.add_op(op, at(1))
        s.set_op_status("op-1", OpStatus.APPLIED, at(2), attempt=True)
        s.add_op(op, at(3))
        record = s.get_op("op-1")
    assert record is not None
    assert (record.status, record.attempts, record.created_at) == (OpStatus.APPLIED, 1, at(1))


def test_op_status_attempts_and_errors(store: SqlStateStore) -> None:
    with store.session() as s:
        s.add_op(make_op(s, "op-1"), at(1))
        s.set_op_status("op-1", OpStatus.PENDING, at(2), error="503 from QuickBooks", attempt=True)
        s.set_op_status("op-1", OpStatus.PENDING, at(3), error="timeout", attempt=True)
        s.set_op_status("op-1", OpStatus.PARKED, at(4))
        record = s.get_op("op-1")
    assert record is not None
    assert record.status is OpStatus.PARKED
    assert record.attempts == 2
    assert record.last_error == "timeout"
    assert (record.created_at, record.updated_at) == (at(1), at(4))
    with pytest.raises(NotStoredError), store.session() as s:
        s.set_op_status("op-unknown", OpStatus.APPLIED, at(5))


def test_op_statuses_are_read_without_the_ops(store: SqlStateStore) -> None:
    with store.session() as s:
        for op_id in ("op-1", "op-2", "op-3"):
            s.add_op(make_op(s, op_id), at(1))
        s.ops_applied(["op-2"], at(2))
        s.set_op_status("op-3", OpStatus.PARKED, at(2))
    with store.session() as s:
        statuses = s.op_statuses(["op-1", "op-2", "op-3", "op-unknown"])
        records = s.ops_by_id(["op-1", "op-2", "op-3"])
    assert statuses == {"op-1": OpStatus.PENDING, "op-2": OpStatus.APPLIED, "op-3": OpStatus.PARKED}
    assert statuses == {op_id: record.status for op_id, record in records.items()}


def test_ops_are_listed_oldest_first_by_status_and_link(store: SqlStateStore) -> None:
    with store.session() as s:
        shared = s.create_link(CONNECTION, INVOICE, "app-shared", None).id
        # Same timestamp and op ids out of alphabetical order: insertion order still decides.
        for op_id in ("op-c", "op-a", "op-b"):
            s.add_op(make_op(s, op_id, link_id=shared), at(1))
        s.add_op(make_op(s, "op-d"), at(2))
        other_link = s.create_link("other", INVOICE, "x", None).id
        s.add_op(make_op(s, "op-x", link_id=other_link, connection="other"), at(3))
        s.set_op_status("op-a", OpStatus.APPLIED, at(4))
        pending = s.ops(CONNECTION, [OpStatus.PENDING])
        both = s.ops(CONNECTION, [OpStatus.PENDING, OpStatus.APPLIED])
        of_link = s.ops(CONNECTION, [OpStatus.PENDING, OpStatus.APPLIED], link_id=shared)
        none = s.ops(CONNECTION, [])
    assert [r.op.op_id for r in pending] == ["op-c", "op-b", "op-d"]
    assert [r.op.op_id for r in both] == ["op-c", "op-a", "op-b", "op-d"]
    assert [r.op.op_id for r in of_link] == ["op-c", "op-a", "op-b"]
    assert none == []


def test_the_ledger_remembers_versions_we_wrote(store: SqlStateStore) -> None:
    entry = LedgerEntry(
        connection=CONNECTION,
        side=Side.QUICKBOOKS,
        entity=INVOICE,
        external_id="130",
        seq=2,
        fields=frozenset({"doc_number", "private_note"}),
        values={"doc_number": "1001", "private_note": None},
    )
    later = entry.model_copy(update={"seq": 3, "fields": frozenset(), "values": {}})
    with store.session() as s:
        s.record_write(later)
        s.record_write(entry)
        s.record_write(entry)
        s.record_write(entry.model_copy(update={"side": Side.APP}))
    with store.session() as s:
        assert s.ledger_for(CONNECTION, Side.QUICKBOOKS, INVOICE, "130") == [entry, later]
        assert s.ledger_for(CONNECTION, Side.QUICKBOOKS, INVOICE, "131") == []
        assert s.ledger_for("other", Side.QUICKBOOKS, INVOICE, "130") == []


def conflict_on(
    field: str = "private_note", app: object = "from app", qb: object = "from qb"
) -> FieldConflict:
    return FieldConflict(field=field, base="before", app=app, quickbooks=qb, policy=ConflictPolicy.MANUAL)


def test_opening_a_conflict_twice_refreshes_the_open_one(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, INVOICE, "app-1", "qb-1").id
        first = s.open_conflict(CONNECTION, link, INVOICE, conflict_on(), at(1))
    assert (first.status, first.app, first.quickbooks, first.created_at) == (
        ConflictStatus.OPEN,
        "from app",
        "from qb",
        at(1),
    )
    with store.session() as s:
        refreshed = s.open_conflict(
            CONNECTION, link, INVOICE, conflict_on(app="newer", qb={"amount": "1.50"}), at(2)
        )
        other_field = s.open_conflict(CONNECTION, link, INVOICE, conflict_on("due_date"), at(3))
    assert refreshed.id == first.id
    assert (refreshed.app, refreshed.quickbooks, refreshed.created_at) == ("newer", {"amount": "1.50"}, at(1))
    assert other_field.id != first.id
    with store.session() as s:
        assert s.get_conflict(first.id) == refreshed
        assert [c.id for c in s.list_conflicts(CONNECTION)] == [first.id, other_field.id]


def test_a_resolved_conflict_is_closed_and_a_new_one_may_open(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, INVOICE, "app-1", "qb-1").id
        conflict = s.open_conflict(CONNECTION, link, INVOICE, conflict_on(), at(1))
        resolved = s.resolve_conflict(conflict.id, {"merged": True}, "ada@example.com", at(2))
    assert resolved.status is ConflictStatus.RESOLVED
    assert (resolved.resolution, resolved.resolved_by, resolved.resolved_at) == (
        {"merged": True},
        "ada@example.com",
        at(2),
    )
    with store.session() as s:
        assert s.list_conflicts(CONNECTION) == []
        assert s.list_conflicts(CONNECTION, open_only=False) == [resolved]
        reopened = s.open_conflict(CONNECTION, link, INVOICE, conflict_on(), at(3))
        assert reopened.id != conflict.id
        assert [c.id for c in s.list_conflicts()] == [reopened.id]
        assert s.list_conflicts("other") == []


def test_resolving_twice_or_unknown_is_refused(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, INVOICE, "app-1", "qb-1").id
        conflict = s.open_conflict(CONNECTION, link, INVOICE, conflict_on(), at(1))
        s.resolve_conflict(conflict.id, "from app", "ada", at(2))
    with pytest.raises(VersionConflictError, match="already resolved"), store.session() as s:
        s.resolve_conflict(conflict.id, "from qb", "bob", at(3))
    with pytest.raises(NotStoredError), store.session() as s:
        s.resolve_conflict(999_999, "x", "bob", at(3))
    with store.session() as s:
        stored = s.get_conflict(conflict.id)
        assert s.get_conflict(999_999) is None
    assert stored is not None
    assert (stored.resolution, stored.resolved_by) == ("from app", "ada")


def test_resolved_ops_are_found_for_one_connection_or_for_all_in_one_query(store: SqlStateStore) -> None:
    """The scheduler's `dispatch` asks once for every company's resolved conflicts (one message every
    two seconds, not one per connection)."""
    with store.session() as s:
        for connection in (CONNECTION, "tenant-acme"):
            link = s.create_link(connection, INVOICE, f"app-{connection}", f"qb-{connection}").id
            conflict = s.open_conflict(connection, link, INVOICE, conflict_on(), at(1))
            s.resolve_conflict(conflict.id, "from app", "ada", at(2))
            s.add_op(make_op(s, f"op-{connection}", link, connection=connection), at(2))
        unresolved = s.create_link(CONNECTION, INVOICE, "app-open", "qb-open").id
        s.open_conflict(CONNECTION, unresolved, INVOICE, conflict_on(), at(1))
        s.add_op(make_op(s, "op-open", unresolved), at(2))
    with store.session() as s:
        assert s.resolved_ops(CONNECTION, at(1)) == [f"op-{CONNECTION}"]
        assert s.resolved_ops("tenant-acme", at(1)) == ["op-tenant-acme"]
        assert s.resolved_ops(None, at(1)) == [f"op-{CONNECTION}", "op-tenant-acme"]
        assert s.resolved_ops(None, at(3)) == []  # resolved before the window
