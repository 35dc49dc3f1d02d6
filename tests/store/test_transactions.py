"""A session is one transaction: it commits at the end of its block, or rolls everything back."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.exc import StatementError

from engine.model import EntityType, Side
from engine.plan import FieldConflict, Op, OpKind
from engine.state import AuditAction, AuditLine, Snapshot
from engine.store import NotStoredError, SqlStateStore
from tests.support.samples import CONNECTION, at, customer_event

CUSTOMER = EntityType.CUSTOMER


class BoomError(Exception):
    pass


def test_a_session_commits_when_its_block_ends(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", None)
    with store.session() as s:
        assert s.get_link(link.id) == link


def test_a_session_rolls_back_everything_on_an_exception(store: SqlStateStore) -> None:
    with pytest.raises(BoomError), store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", "qb-1")
        s.save_snapshot(Snapshot(link_id=link.id, base={"display_name": "Ada"}))
        s.append_event(customer_event(), at(1))
        s.audit_many([AuditLine(CONNECTION, CUSTOMER, AuditAction.CAPTURED, at(1), link_id=link.id)])
        s.inbox_add(b"{}", at(1))
        raise BoomError
    with store.session() as s:
        assert s.list_links(CONNECTION) == []
        assert s.get_snapshot(link.id) is None
        assert s.pending_records(CONNECTION) == []
        assert s.history() == []
        assert s.inbox_pending() == []


def test_ops_and_conflicts_need_a_stored_link(store: SqlStateStore) -> None:
    op = Op(
        op_id="op-1",
        connection=CONNECTION,
        link_id="f" * 32,
        entity=CUSTOMER,
        side=Side.APP,
        kind=OpKind.CREATE,
        reason="new in QuickBooks",
    )
    with pytest.raises(NotStoredError), store.session() as s:
        s.add_op(op, at(1))
    conflict = FieldConflict(field="email", app="a@example.com", quickbooks="q@example.com")
    with pytest.raises(NotStoredError), store.session() as s:
        s.open_conflict(CONNECTION, "f" * 32, CUSTOMER, conflict, at(1))
    with store.session() as s:
        assert s.get_op("op-1") is None
        assert s.list_conflicts() == []


def test_naive_times_are_refused(store: SqlStateStore) -> None:
    with pytest.raises(StatementError, match="naive datetime"), store.session() as s:
        s.audit_many([AuditLine(CONNECTION, CUSTOMER, AuditAction.CAPTURED, datetime(2026, 5, 1, 12, 0))])
    with store.session() as s:
        assert s.history() == []
