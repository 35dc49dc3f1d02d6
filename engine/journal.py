"""Journaling captured changes: each event once per record and version, with its line in the audit trail.

Every way a change comes in ends here: a poll of either side (`Runner`), a webhook's records
(`connectors.quickbooks.receiver.ingest_inbox`). A duplicate delivery is a no-op, an older version
than one already journaled is recorded as stale and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from engine.model import ChangeEvent
from engine.ports import StoreSession
from engine.state import AppendResult, AuditAction, AuditLine, RecordKey


def key_of(event: ChangeEvent) -> RecordKey:
    return RecordKey(
        connection=event.connection, side=event.side, entity=event.entity, external_id=event.external_id
    )


def journal_events(s: StoreSession, events: Sequence[ChangeEvent], now: datetime) -> list[AppendResult]:
    """Journal a page of events in the caller's transaction, in a few statements: one read of what
    is journaled already, one insert, one insert of their audit lines."""
    if not events:
        return []
    results = s.append_events(events, now)
    lines: list[AuditLine] = []
    # Read well at (or past) the version that was parked: the record is fixed. (One look per entity
    # and side: most have nothing parked.)
    groups = {(e.connection, e.side, e.entity) for e in events}
    parked = {(side, entity) for c, side, entity in groups if s.any_parked(c, side, entity)}
    for event, result in zip(events, results, strict=True):
        if result is not AppendResult.STALE and (event.side, event.entity) in parked:
            s.unpark_record(key_of(event), event.version.seq)
        if result is not AppendResult.DUPLICATE:
            action = AuditAction.CAPTURED if result is AppendResult.NEW else AuditAction.STALE
            lines.append(
                AuditLine(
                    event.connection,
                    event.entity,
                    action,
                    now,
                    side=event.side,
                    external_id=event.external_id,
                    detail={"version": event.version.seq},
                )
            )
    s.audit_many(lines)
    return results
