"""Parked work as a person handles it: why each op or record is parked, in words, what to do, and the
retry and skip actions the console and `ledgersync parked` share."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from engine.errors import NotFoundError, VersionConflictError
from engine.history import record_label
from engine.model import Side
from engine.plan import Op, OpStatus
from engine.ports import StoreSession
from engine.state import AuditAction, AuditLine, JournalStatus, OpRecord, ParkedRecord, RecordKey

SIDE_NAMES = {Side.APP: "the app", Side.QUICKBOOKS: "QuickBooks"}
_GONE = ("not found", "no longer", "deleted", "inactive", "made inactive", "gone")


@dataclass(frozen=True)
class Explained:
    """One parked item, told to a person."""

    kind: str  # "op" (a write the other side refused) or "record" (a record that could not be read)
    id: str
    connection: str
    entity: str
    side: str
    external_id: str | None
    link_id: str | None
    why: str
    what_to_do: str
    error: str
    since: datetime
    #: What a person calls the record (a customer's name, an invoice's number), when known.
    label: str | None = None


def explain_op(record: OpRecord) -> Explained:
    op = record.op
    target = SIDE_NAMES[op.side]
    other = SIDE_NAMES[op.side.other]
    verb = op.kind.value
    error = record.last_error or "no reason given"
    why = f"{target} refused to {verb} this {op.entity}: {error}"
    if any(word in error.lower() for word in _GONE):
        todo = (
            f"The {op.entity} is gone or inactive in {target}. Restore it there and press Retry, or press "
            "Skip to leave it out of the sync."
        )
    else:
        todo = (
            f"Correct the value {target} refused (in {other}, or in {target} if it is a setting there), "
            "then press Retry. Skip sets this change aside for good."
        )
    return Explained(
        kind="op",
        id=op.op_id,
        connection=op.connection,
        entity=op.entity.value,
        side=op.side.value,
        external_id=op.external_id,
        link_id=op.link_id,
        why=why,
        what_to_do=todo,
        error=error,
        since=record.updated_at,
    )


def explain_record(record: ParkedRecord) -> Explained:
    side = SIDE_NAMES[record.side]
    todo = (
        "Fix the value named here in the app's database (the record syncs by itself once it reads well), "
        "or press Retry to read it again now."
        if record.side is Side.APP
        else "Fix the record in QuickBooks (it syncs by itself once it reads well), or press Retry to read "
        "it again now."
    )
    return Explained(
        kind="record",
        id=record_id(record.key),
        connection=record.connection,
        entity=record.entity.value,
        side=record.side.value,
        external_id=record.external_id,
        link_id=None,
        why=f"ledgersync could not read this {record.entity} from {side}: {record.reason}",
        what_to_do=todo + " Skip removes it from this list until it changes again.",
        error=record.reason,
        since=record.parked_at,
    )


def parked(s: StoreSession, connection: str) -> list[Explained]:
    """Every parked op and record of the connection, explained, oldest first."""
    records = s.ops(connection, [OpStatus.PARKED])
    links = s.get_links({r.op.link_id for r in records})
    items = [
        replace(explain_op(r), label=record_label(s, links[r.op.link_id]) if r.op.link_id in links else None)
        for r in records
    ]
    items += [explain_record(r) for r in s.parked_records(connection)]
    return sorted(items, key=lambda e: e.since)


def record_id(key: RecordKey) -> str:
    """A parked record's id for a URL or a command line: side:entity:external id."""
    return f"{key.side.value}:{key.entity.value}:{key.external_id}"


def retry_op(s: StoreSession, op_id: str, by: str, now: datetime) -> OpRecord:
    """Send a parked op again: it goes back to pending (the next apply or kick writes it).

    When the record has changed since on the side the op's values came from (the refused value was
    corrected there, as the advice says), the op is set aside instead and the next pass plans the record
    from what it holds now: the op's own values would only be refused again."""
    record = _parked_op(s, op_id)
    if _changed_at_source(s, record.op):
        note = f"retried by {by} as the record now is: {record.last_error or ''}"
        s.set_op_status(op_id, OpStatus.SUPERSEDED, now, error=note)
    else:
        s.set_op_status(op_id, OpStatus.PENDING, now)
    _audit(s, record, AuditAction.RETRIED, by, now)
    return record


def _changed_at_source(s: StoreSession, op: Op) -> bool:
    """Whether the record `op` takes its values from has a change journaled and not yet decided (a
    parked op holds its record, so a change made after it waits)."""
    link = s.get_link(op.link_id)
    source = op.side.other
    external_id = link.external_id(source) if link is not None else None
    if external_id is None:
        return False
    key = RecordKey(connection=op.connection, side=source, entity=op.entity, external_id=external_id)
    entry = s.latest_event(key)
    return entry is not None and entry.status is JournalStatus.NEW


def skip_op(s: StoreSession, op_id: str, by: str, now: datetime) -> OpRecord:
    """Set a parked op aside for good (superseded): the record's later changes sync again."""
    record = _parked_op(s, op_id)
    s.set_op_status(op_id, OpStatus.SUPERSEDED, now, error=f"skipped by {by}: {record.last_error or ''}")
    _audit(s, record, AuditAction.SKIPPED, by, now)
    return record


def retry_record(s: StoreSession, connection: str, item_id: str, now: datetime) -> ParkedRecord:
    """Read a parked record again at the next poll, before the others (its check time moves back)."""
    record = _parked_record(s, connection, item_id)
    s.park_record(record.model_copy(update={"checked_at": now - timedelta(days=3650)}))
    return record


def skip_record(s: StoreSession, connection: str, item_id: str, by: str, now: datetime) -> ParkedRecord:
    """Drop a parked record from the list; it is parked again if a later read still cannot read it."""
    record = _parked_record(s, connection, item_id)
    s.unpark_record(record.key)
    line = AuditLine(
        connection,
        record.entity,
        AuditAction.SKIPPED,
        now,
        side=record.side,
        external_id=record.external_id,
        detail={"by": by, "reason": record.reason},
    )
    s.audit_many([line])
    return record


def _parked_op(s: StoreSession, op_id: str) -> OpRecord:
    record = s.get_op(op_id)
    if record is None:
        raise NotFoundError(f"no op {op_id}")
    if record.status is not OpStatus.PARKED:
        raise VersionConflictError(f"op {op_id} is not parked (it is {record.status})")
    return record


def _parked_record(s: StoreSession, connection: str, item_id: str) -> ParkedRecord:
    for record in s.parked_records(connection):
        if record_id(record.key) == item_id:
            return record
    raise NotFoundError(f"no parked record {item_id}")


def _audit(s: StoreSession, record: OpRecord, action: AuditAction, by: str, now: datetime) -> None:
    s.audit_many([AuditLine.about_op(record.op, action, now, by=by)])
