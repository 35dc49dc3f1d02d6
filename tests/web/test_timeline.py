"""A record's history in words: one line per thing that happened, no duplicates, no internals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from engine.model import EntityType, Side
from engine.state import AuditAction, AuditEntry
from engine.timeline import timeline

A, Q = Side.APP, Side.QUICKBOOKS
START = datetime(2026, 11, 2, 9, tzinfo=UTC)
LABELS = {"phone": "Phone number", "email": "Email", "notes": "Notes"}


def entry(n: int, action: AuditAction, side: Side | None = None, **detail: Any) -> AuditEntry:
    return AuditEntry(
        id=n,
        connection="default",
        entity=EntityType.CUSTOMER,
        link_id="L1",
        side=side,
        external_id="1" if side else None,
        action=action,
        detail=detail,
        at=START + timedelta(minutes=n),
    )


def test_the_story_of_a_customer_reads_as_a_person_would_tell_it():
    entries = [
        entry(1, AuditAction.CAPTURED, A, version=0),
        entry(2, AuditAction.DECIDED, Q, op_id="o1", kind="create", fields=["display_name", "email"]),
        entry(3, AuditAction.WRITTEN, Q, op_id="o1", kind="create", fields=["display_name", "email"]),
        entry(4, AuditAction.CAPTURED, Q, version=0),  # our own create, read back
        entry(5, AuditAction.ECHO_DROPPED, Q, version=0),
        entry(6, AuditAction.CAPTURED, Q, version=1),
        entry(7, AuditAction.DECIDED, A, op_id="o2", kind="update", fields=["phone"]),
        entry(8, AuditAction.WRITTEN, A, op_id="o2", kind="update", fields=["phone"]),
        entry(9, AuditAction.CONFLICT, conflict_id=1, field="email", policy="manual"),
        entry(10, AuditAction.CONFLICT, conflict_id=1, field="email", policy="manual"),  # re-decided
        entry(11, AuditAction.STALE, A, version=1),
        entry(12, AuditAction.CONFLICT, conflict_id=1, field="email", policy="manual"),
        entry(13, AuditAction.RESOLVED, conflict_id=1, field="email", by="maria", choice="took quickbooks"),
        entry(14, AuditAction.PARKED, Q, op_id="o3", error="the name is taken"),
        entry(15, AuditAction.RETRIED, Q, op_id="o3", by="maria"),
    ]
    lines = timeline(entries, lambda name: LABELS.get(name, name))
    assert [line.text for line in lines] == [
        "first seen in the app",
        "new in the app: to be created in QuickBooks",
        "created in QuickBooks",
        "Phone number changed in QuickBooks",
        "sent to the app (Phone number)",
        "conflict on Email opened",
        "conflict on Email resolved by maria: kept QuickBooks' value",
        "could not be written to QuickBooks: the name is taken",
        "sent to QuickBooks again by maria",
    ]
    assert [line.at for line in lines] == sorted(line.at for line in lines)


def test_a_conflict_opened_again_after_it_was_resolved_shows_again():
    entries = [
        entry(1, AuditAction.CONFLICT, conflict_id=1, field="email"),
        entry(2, AuditAction.RESOLVED, conflict_id=1, field="email", by="olga", choice="set 'x@y.example'"),
        entry(3, AuditAction.CONFLICT, conflict_id=2, field="email"),
    ]
    assert [line.text for line in timeline(entries)] == [
        "conflict on email opened",
        "conflict on email resolved by olga: typed a new value",
        "conflict on email opened",
    ]


def test_many_fields_are_summed_up():
    many = ["display_name", "email", "phone", "notes", "active"]
    (line,) = timeline([entry(1, AuditAction.DECIDED, Side.APP, kind="update", fields=many)])
    assert line.text == "display_name, email, phone and 2 more changed in QuickBooks"
