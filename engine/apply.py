"""Applying one op through its connector, and recording the outcome in one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from engine.decide import side_state
from engine.errors import (
    FieldRefusedError,
    LedgersyncError,
    NeedsReauthorizationError,
    NotFoundError,
    RecordRejectedError,
    RetriableError,
    VersionConflictError,
)
from engine.model import ChangeEvent, EntityType, Operation, Origin, Side, fields_from_json, fields_to_json
from engine.normalize import normalize_value
from engine.plan import Op, OpKind, OpStatus
from engine.ports import Connector, StateStore, StoreSession, WriteResult
from engine.refs import UnlinkedReferenceError, refs_in, to_side
from engine.refusals import open_refusal
from engine.state import SENT_SINGLE, AuditAction, AuditLine, LedgerEntry, Snapshot

log = logging.getLogger(__name__)

_REMOVING = (OpKind.DELETE, OpKind.VOID, OpKind.INACTIVATE)


class Outcome:
    APPLIED = "applied"
    RETRY = "retry"
    WAITING = "waiting"
    PARKED = "parked"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"


class Applied(NamedTuple):
    outcome: str
    #: For a retry after a rate limit: how long the other side asked us to wait (seconds).
    retry_after: float | None = None
    #: Ops this outcome planned (the rest of an op whose one field was refused), to apply next.
    follow_up: tuple[str, ...] = ()
    #: (link id, field) of a value the target refused, now a conflict in the review queue.
    refused: tuple[str, str] | None = None


def apply_op(store: StateStore, connector: Connector, op_id: str, now: datetime) -> Applied:
    """Run one pending op; idempotent (an applied op is skipped, a retried one reuses its op id).

    Skipped too while another worker applies it (it holds the op's claim and records the outcome).
    """
    with store.claim_ops([op_id]) as claimed:
        if op_id not in claimed:
            log.debug("op %s is being applied by another worker", op_id)
            return Applied(Outcome.SKIPPED)
        return _apply_claimed(store, connector, op_id, now)


def _apply_claimed(store: StateStore, connector: Connector, op_id: str, now: datetime) -> Applied:
    with store.session() as s:
        record = s.get_op(op_id)
        if record is None or record.status is not OpStatus.PENDING:
            return Applied(Outcome.SKIPPED)
        op = record.op
        if record.sent_as not in (None, SENT_SINGLE):
            # It went out in a batch whose answer was lost: only that batch, sent again whole under
            # its requestid, is replayed rather than written twice. The pipeline's sweep sends it.
            log.info("op %s waits for its batch %s to be sent again whole", op_id, record.sent_as)
            return Applied(Outcome.SKIPPED)
        try:
            outgoing = outgoing_op(s, op)
        except UnlinkedReferenceError as exc:
            s.set_op_status(op_id, OpStatus.PENDING, now, error=str(exc))
            return Applied(Outcome.RETRY)
        # Stored before the request leaves: if the answer is lost, it goes alone again, not in a batch.
        if record.sent_as is None:
            s.set_sent_as({op_id: SENT_SINGLE})
    try:
        result = connector.write(outgoing)
    except LedgersyncError as exc:
        return settle_error(store, connector, op, exc, now)
    with store.session() as s:
        record_success(s, op, result, now)
    return Applied(Outcome.APPLIED)


def outgoing_op(s: StoreSession, op: Op) -> Op:
    """The op as its target side takes it: references in that side's ids, the link's current id.

    Raises UnlinkedReferenceError while a referenced record has no id on that side yet.
    """
    ready = outgoing_ops(s, [op])[op.op_id]
    if isinstance(ready, UnlinkedReferenceError):
        raise ready
    return ready


def outgoing_ops(s: StoreSession, ops: Sequence[Op]) -> dict[str, Op | UnlinkedReferenceError]:
    """Many ops as their target sides take them (references in that side's ids, each link's current
    id), by op id, or the UnlinkedReferenceError of one whose reference has no id there yet; the
    links they name read in one statement (two when their references name other links)."""
    links = s.get_links({op.link_id for op in ops})
    referenced = {ref_id for op in ops for _, ref_id in refs_in(op.fields)}
    targets = {**links, **s.get_links(referenced - links.keys())} if referenced else links
    ready: dict[str, Op | UnlinkedReferenceError] = {}
    for op in ops:

        def id_of(entity: EntityType, link_id: str, side: Side = op.side) -> str | None:
            link = targets.get(link_id)
            return link.external_id(side) if link else None

        try:
            target_fields = to_side(op.fields, op.side, id_of)
        except UnlinkedReferenceError as exc:
            ready[op.op_id] = exc
            continue
        link = links.get(op.link_id)
        external_id = link.external_id(op.side) if link else op.external_id
        ready[op.op_id] = op.model_copy(
            update={"fields": target_fields, "external_id": external_id or op.external_id}
        )
    return ready


def settle_error(
    store: StateStore, connector: Connector, op: Op, error: LedgersyncError, now: datetime
) -> Applied:
    """Record what a failed write means for its op (retry, wait, park, supersede); re-raises the rest."""
    text = str(error)
    if isinstance(error, VersionConflictError):
        return Applied(_superseded(store, connector, op, text, now))
    if isinstance(error, NeedsReauthorizationError):
        return Applied(_mark(store, op, OpStatus.WAITING, text, now, Outcome.WAITING))
    if isinstance(error, FieldRefusedError) and op.kind is OpKind.UPDATE and error.field in op.fields:
        return _refused(store, op, error, text, now)
    if isinstance(error, RecordRejectedError | NotFoundError):
        return Applied(_mark(store, op, OpStatus.PARKED, text, now, Outcome.PARKED, audit=AuditAction.PARKED))
    if isinstance(error, RetriableError):
        return Applied(_mark(store, op, OpStatus.PENDING, text, now, Outcome.RETRY), error.retry_after)
    raise error


def _mark(
    store: StateStore,
    op: Op,
    status: OpStatus,
    error: str,
    now: datetime,
    outcome: str,
    audit: AuditAction | None = None,
) -> str:
    context = {"connection": op.connection, "entity": op.entity, "record": op.external_id, "op_id": op.op_id}
    log.warning(
        "op %s (%s %s on %s) -> %s: %s", op.op_id, op.kind, op.entity, op.side, status, error, extra=context
    )
    with store.session() as s:
        s.set_op_status(op.op_id, status, now, error=error, attempt=True)
        if audit is not None:
            s.audit_many([AuditLine.about_op(op, audit, now, error=error)])
    return outcome


def _refused(store: StateStore, op: Op, error: FieldRefusedError, text: str, now: datetime) -> Applied:
    """The target refused one field's value, not the record: that field goes to review as a conflict
    saying why, and the op's other fields are written by an op of their own (nothing was written, so
    it expects the same version). Plans hold the refused value back while the conflict is open."""
    rest = {name: value for name, value in op.fields.items() if name != error.field}
    follow_up: tuple[str, ...] = ()
    with store.session() as s:
        s.lock_link(op.link_id)
        link = s.get_link(op.link_id)
        assert link is not None
        held = side_state(s, link, op.side)
        holds = held.fields.get(error.field) if held is not None and held.fields is not None else None
        conflict = open_refusal(s, link, op, error.field, holds, error.message, now)
        s.set_op_status(op.op_id, OpStatus.SUPERSEDED, now, error=text, attempt=True)
        if rest:
            remainder = op.model_copy(
                update={
                    "op_id": uuid.uuid4().hex,
                    "fields": rest,
                    "reason": f"{op.reason}; {error.field} held for review",
                }
            )
            s.add_op(remainder, now)
            follow_up = (remainder.op_id,)
        _audit_op(s, op, now, refused=error.field, conflict_id=conflict.id, then=follow_up)
    log.info("op %s: %s refused by %s, in review as conflict %d", op.op_id, error.field, op.side, conflict.id)
    return Applied(Outcome.SUPERSEDED, follow_up=follow_up, refused=(link.id, error.field))


def _superseded(store: StateStore, connector: Connector, op: Op, error: str, now: datetime) -> str:
    """The target changed under us: drop this op and journal the record's newest state to re-plan."""
    assert op.external_id is not None
    try:
        fresh = connector.fetch(op.entity, op.external_id)
    except LedgersyncError as exc:
        return _mark(store, op, OpStatus.PENDING, f"{error}; re-read failed: {exc}", now, Outcome.RETRY)
    with store.session() as s:
        current = s.get_op(op.op_id)
        if current is None or current.status is not OpStatus.APPLIED:
            # An applied op stays applied: its write landed (this attempt may have failed on it).
            s.set_op_status(op.op_id, OpStatus.SUPERSEDED, now, error=error, attempt=True)
        s.append_event(fresh, now)
        _audit_op(s, op, now, superseded=error)
    return Outcome.SUPERSEDED


def _audit_op(s: StoreSession, op: Op, now: datetime, **detail: Any) -> None:
    """A line in the record's history about what became of `op` (refused, superseded)."""
    s.audit_many([AuditLine.about_op(op, AuditAction.DECIDED, now, **detail)])


def _restates(entity: EntityType, base: dict[str, Any] | None, result: WriteResult) -> bool:
    """Whether every field the write's result holds equals the base (normalized): a pure echo."""
    if result.deleted or result.adopted or not base:
        return False
    agreed = fields_from_json(entity, {k: v for k, v in base.items() if k in result.fields})
    return all(
        name in agreed
        and (value == agreed[name] or normalize_value(name, value) == normalize_value(name, agreed[name]))
        for name, value in result.fields.items()
    )


def record_success(s: StoreSession, op: Op, result: WriteResult, now: datetime) -> None:
    """Ledger, link, base and op status commit together, and the written state is journaled as our echo."""
    record_successes(s, [(op, result)], now)


def record_successes(s: StoreSession, done: Sequence[tuple[Op, WriteResult]], now: datetime) -> None:
    """`record_success` for many writes (one connection's) in a few statements; in order, so two
    writes of one record (one per side) both land in its base."""
    if not done:
        return
    connection = done[0][0].connection
    # Hold the links while their snapshots move, as decide does: two ops of one plan (one per side)
    # applied by two workers at once would otherwise both save from the same snapshot revision.
    links = s.lock_links({op.link_id for op, _ in done})
    statuses = s.op_statuses([op.op_id for op, _ in done])
    snapshots = s.snapshots_of(links)
    stored = set(snapshots)
    ledger: list[LedgerEntry] = []
    echoes: list[ChangeEvent] = []
    restated: list[bool] = []
    lines: list[AuditLine] = []
    applied: list[str] = []
    new_ids: dict[Side, dict[str, str]] = {Side.APP: {}, Side.QUICKBOOKS: {}}
    for op, result in done:
        if statuses.get(op.op_id) is OpStatus.APPLIED or op.op_id in applied:
            # Recorded already (a replayed write): recording it again would put this op's older
            # values back into a base that later ops may have moved on.
            continue
        # Any other status still records: the write landed. An attempt of this op that failed on the
        # version this write produced has marked it superseded; without the ledger entry, our own
        # write would come back as a user's change, newer than the user's real one on the other side.
        link = links[op.link_id]  # an op's link is never deleted
        if link.external_id(op.side) != result.external_id:
            # A create landed (or a record was adopted): its id is set below with the others'.
            column = "app_id" if op.side is Side.APP else "quickbooks_id"
            link = links[link.id] = link.model_copy(update={column: result.external_id})
            new_ids[op.side][link.id] = result.external_id
        # An adopted record (an existing one linked by the duplicate-name policy) is not our write: no
        # ledger entry and no base from what we meant to send, so the two copies are reconciled as a match.
        written = frozenset() if result.adopted else frozenset(op.fields)
        sent = {} if result.adopted else fields_to_json(op.entity, op.fields)
        if not result.adopted:
            ledger.append(
                LedgerEntry(
                    connection=op.connection,
                    side=op.side,
                    entity=op.entity,
                    external_id=result.external_id,
                    seq=result.version.seq,
                    fields=written,
                    values=sent,
                )
            )
        snapshot = snapshots.get(link.id) or Snapshot(link_id=link.id)
        base = snapshot.base if result.adopted else {**(snapshot.base or {}), **sent}
        seqs = {"app_seq": result.version.seq} if op.side == "app" else {"quickbooks_seq": result.version.seq}
        snapshots[link.id] = snapshot.model_copy(
            update={"base": base, "tombstone": op.kind in _REMOVING, **seqs}
        )
        applied.append(op.op_id)
        # Journaled as new: reconciling it drops it as our echo, except fields QuickBooks computed or
        # filled in for us. An echo that only restates the new base has nothing to decide: journaled
        # as processed, so each change is decided once.
        if result.deleted or result.fields:
            echoes.append(
                ChangeEvent(
                    side=op.side,
                    connection=op.connection,
                    entity=op.entity,
                    external_id=result.external_id,
                    version=result.version,
                    observed_at=now,
                    operation=Operation.DELETE if result.deleted else Operation.UPSERT,
                    fields={} if result.deleted else result.fields,
                    origin=Origin.USER if result.adopted else Origin.LEDGERSYNC,
                )
            )
            restated.append(_restates(op.entity, base, result))
        lines.append(
            AuditLine(
                op.connection,
                op.entity,
                AuditAction.WRITTEN,
                now,
                link_id=link.id,
                side=op.side,
                external_id=result.external_id,
                detail={
                    "op_id": op.op_id,
                    "kind": op.kind,
                    "fields": sorted(written),
                    "version": result.version.seq,
                    **({"adopted": "linked to the existing record"} if result.adopted else {}),
                },
            )
        )
    for side, ids in new_ids.items():
        s.set_link_ids(side, ids)
    s.record_writes(ledger)
    moved = {op.link_id for op, _ in done if op.op_id in applied}
    # Two writes of one link saved once, from the revision read: the second builds on the first.
    s.save_snapshots(connection, [snap for link_id, snap in snapshots.items() if link_id in moved], stored)
    s.ops_applied(applied, now)
    s.append_events(echoes, now, restated)
    s.audit_many(lines)
