"""Connections, cursors and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from engine.model import EntityType, Side
from engine.state import AuditAction, AuditLine, Connection, ConnectionStatus, Cursor
from engine.store import SqlStateStore
from tests.support.samples import CONNECTION, at

PACIFIC = timezone(timedelta(hours=-7))


def test_connections_are_saved_whole_and_overwritten(store: SqlStateStore) -> None:
    connection = Connection(
        id=CONNECTION,
        realm_id="9130",
        tokens_encrypted=b"gAAAA\x00\xffciphertext",
        access_expires_at=datetime(2026, 5, 1, 5, 0, tzinfo=PACIFIC),
        refresh_expires_at=at(60),
        refresh_hard_expires_at=at(600),
        updated_at=at(1),
    )
    with store.session() as s:
        s.save_connection(connection)
        s.save_connection(Connection(id="a-first", environment="sandbox"))
    with store.session() as s:
        stored = s.get_connection(CONNECTION)
        assert s.get_connection("missing") is None
    assert stored == connection
    assert stored is not None
    assert stored.access_expires_at is not None
    assert stored.access_expires_at.utcoffset() == timedelta(0)
    revoked = connection.model_copy(update={"status": ConnectionStatus.REVOKED, "tokens_encrypted": None})
    with store.session() as s:
        s.save_connection(revoked)
        assert [c.id for c in s.list_connections()] == ["a-first", CONNECTION]
        assert s.get_connection(CONNECTION) == revoked


def test_cursors_move_per_side_and_entity(store: SqlStateStore) -> None:
    cursor = Cursor(
        connection=CONNECTION,
        side=Side.QUICKBOOKS,
        entity=EntityType.INVOICE,
        position="2026-05-01T00:00Z",
        updated_at=at(1),
    )
    with store.session() as s:
        assert s.get_cursor(CONNECTION, Side.QUICKBOOKS, EntityType.INVOICE) is None
        s.save_cursor(cursor)
        s.save_cursor(cursor.model_copy(update={"side": Side.APP, "position": "17"}))
    moved = cursor.model_copy(update={"position": "2026-05-02T00:00Z", "updated_at": at(2)})
    with store.session() as s:
        s.save_cursor(moved)
    with store.session() as s:
        assert s.get_cursor(CONNECTION, Side.QUICKBOOKS, EntityType.INVOICE) == moved
        app = s.get_cursor(CONNECTION, Side.APP, EntityType.INVOICE)
        assert app is not None
        assert app.position == "17"
        assert s.get_cursor(CONNECTION, Side.QUICKBOOKS, EntityType.ITEM) is None


def test_history_filters_and_keeps_the_newest_in_order(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, EntityType.CUSTOMER, "app-1", "qb-1").id
        s.audit_many(
            [
                AuditLine(
                    CONNECTION,
                    EntityType.CUSTOMER,
                    AuditAction.CAPTURED,
                    at(1),
                    side=Side.QUICKBOOKS,
                    external_id="qb-1",
                )
            ]
        )
        s.audit_many(
            [
                AuditLine(
                    CONNECTION,
                    EntityType.CUSTOMER,
                    AuditAction.DECIDED,
                    at(2),
                    link_id=link,
                    detail={"writes": 1},
                )
            ]
        )
        s.audit_many(
            [
                AuditLine(
                    CONNECTION,
                    EntityType.CUSTOMER,
                    AuditAction.WRITTEN,
                    at(3),
                    link_id=link,
                    side=Side.APP,
                    external_id="app-1",
                )
            ]
        )
        s.audit_many([AuditLine("other", EntityType.ITEM, AuditAction.ECHO_DROPPED, at(4))])
    with store.session() as s:
        everything = s.history()
        ours = s.history(connection=CONNECTION)
        of_link = s.history(link_id=link)
        of_record = s.history(side=Side.QUICKBOOKS, external_id="qb-1")
        newest_two = s.history(connection=CONNECTION, limit=2)
    assert [e.action for e in everything] == [
        AuditAction.CAPTURED,
        AuditAction.DECIDED,
        AuditAction.WRITTEN,
        AuditAction.ECHO_DROPPED,
    ]
    assert len(ours) == 3
    assert [e.action for e in of_link] == [AuditAction.DECIDED, AuditAction.WRITTEN]
    assert of_link[0].detail == {"writes": 1}
    assert of_link[0].at == at(2)
    assert [e.action for e in of_record] == [AuditAction.CAPTURED]
    assert everything[3].detail == {}
    assert everything[3].side is None
    assert [e.action for e in newest_two] == [AuditAction.DECIDED, AuditAction.WRITTEN]
    assert all(e.at.tzinfo is not None for e in everything)


def test_aware_times_come_back_in_utc(store: SqlStateStore) -> None:
    local = datetime(2026, 5, 1, 20, 30, 15, 123456, tzinfo=PACIFIC)
    with store.session() as s:
        s.audit_many([AuditLine(CONNECTION, EntityType.ITEM, AuditAction.CAPTURED, local)])
    with store.session() as s:
        (entry,) = s.history()
    assert entry.at == local
    assert entry.at.tzinfo is not None
    assert entry.at.utcoffset() == timedelta(0)
    assert entry.at == datetime(2026, 5, 2, 3, 30, 15, 123456, tzinfo=UTC)


def test_counts_group_rows_by_status_and_action(store: SqlStateStore) -> None:
    from tests.support.samples import customer_event

    with store.session() as s:
        s.append_event(customer_event(seq=1), at(1))
        s.append_event(customer_event(seq=2), at(2))
        s.create_link(CONNECTION, EntityType.CUSTOMER, "app-1", "qb-1")
        s.audit_many([AuditLine(CONNECTION, EntityType.CUSTOMER, AuditAction.ECHO_DROPPED, at(3))])
        counts = s.counts(CONNECTION)
        assert s.counts("someone-else").links == 0
    assert counts.journal == {"new": 2} and counts.links == 1
    assert counts.audit == {"echo_dropped": 1} and counts.ops == {} and counts.conflicts == {}
