"""Translation between table rows and the frozen values of engine.state (rows never leave the store)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.model import ChangeEvent, EntityType, Side
from engine.plan import ConflictPolicy, Op, OpKind, OpStatus
from engine.state import (
    AuditAction,
    AuditEntry,
    Conflict,
    ConflictStatus,
    Connection,
    ConnectionStatus,
    Cursor,
    InboxEntry,
    JournalEntry,
    JournalStatus,
    LedgerEntry,
    Link,
    OpRecord,
    Snapshot,
)

Row = sa.RowMapping


def connection_values(connection: Connection) -> dict[str, Any]:
    values = connection.model_dump()
    values["status"] = connection.status.value
    return values


def to_connection(row: Row) -> Connection:
    return Connection(
        id=row["id"],
        realm_id=row["realm_id"],
        app_tenant=row["app_tenant"],
        environment=row["environment"],
        status=ConnectionStatus(row["status"]),
        tokens_encrypted=row["tokens_encrypted"],
        access_expires_at=row["access_expires_at"],
        refresh_expires_at=row["refresh_expires_at"],
        refresh_hard_expires_at=row["refresh_hard_expires_at"],
        updated_at=row["updated_at"],
    )


def to_link(row: Row) -> Link:
    return Link(
        id=row["id"],
        connection=row["connection"],
        entity=EntityType(row["entity"]),
        app_id=row["app_id"],
        quickbooks_id=row["quickbooks_id"],
    )


def to_snapshot(row: Row) -> Snapshot:
    return Snapshot(
        link_id=row["link_id"],
        base=row["base"],
        app_seq=row["app_seq"],
        quickbooks_seq=row["quickbooks_seq"],
        tombstone=row["tombstone"],
        revision=row["revision"],
    )


def to_journal_entry(row: Row) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        event=ChangeEvent.model_validate(row["payload"]),
        status=JournalStatus(row["status"]),
        received_at=row["received_at"],
    )


def op_values(op: Op) -> dict[str, Any]:
    """The op's columns; `fields` are stored (and come back) in JSON form."""
    return op.model_dump(mode="json")


def to_op_record(row: Row) -> OpRecord:
    op = Op(
        op_id=row["op_id"],
        connection=row["connection"],
        link_id=row["link_id"],
        entity=EntityType(row["entity"]),
        side=Side(row["side"]),
        kind=OpKind(row["kind"]),
        external_id=row["external_id"],
        fields=row["fields"],
        expected_seq=row["expected_seq"],
        reason=row["reason"],
    )
    return OpRecord(
        op=op,
        status=OpStatus(row["status"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        sent_as=row["sent_as"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def to_ledger_entry(row: Row) -> LedgerEntry:
    return LedgerEntry(
        connection=row["connection"],
        side=Side(row["side"]),
        entity=EntityType(row["entity"]),
        external_id=row["external_id"],
        seq=row["seq"],
        fields=frozenset(row["fields"]),
        values=dict(row["fields"]) if isinstance(row["fields"], dict) else {},
    )


def to_conflict(row: Row) -> Conflict:
    return Conflict(
        id=row["id"],
        connection=row["connection"],
        link_id=row["link_id"],
        entity=EntityType(row["entity"]),
        field=row["field"],
        base=row["base"],
        app=row["app"],
        quickbooks=row["quickbooks"],
        policy=ConflictPolicy(row["policy"]),
        status=ConflictStatus(row["status"]),
        resolution=row["resolution"],
        resolved_by=row["resolved_by"],
        resolved_at=row["resolved_at"],
        created_at=row["created_at"],
    )


def to_cursor(row: Row) -> Cursor:
    return Cursor(
        connection=row["connection"],
        side=Side(row["side"]),
        entity=EntityType(row["entity"]),
        position=row["position"],
        updated_at=row["updated_at"],
    )


def to_audit_entry(row: Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        connection=row["connection"],
        entity=EntityType(row["entity"]),
        link_id=row["link_id"],
        side=None if row["side"] is None else Side(row["side"]),
        external_id=row["external_id"],
        action=AuditAction(row["action"]),
        detail=row["detail"],
        at=row["at"],
    )


def to_inbox_entry(row: Row) -> InboxEntry:
    return InboxEntry(
        id=row["id"],
        body=bytes(row["body"]),
        received_at=row["received_at"],
        processed=row["processed"],
        error=row["error"],
    )
