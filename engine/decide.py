"""One reconcile decision for one record, persisted in one transaction: the shell around `reconcile`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from engine.errors import VersionConflictError
from engine.model import MODELS, EntityType, Side, fields_from_json, fields_to_json
from engine.plan import Op, OpKind, OpStatus, Plan, Write
from engine.ports import Clock, Policy, StateStore, StoreSession
from engine.reconcile import Ledger, SideState, reconcile
from engine.refs import to_links
from engine.refusals import hold_refused, refusals
from engine.state import AuditAction, Conflict, Link, RecordKey, Snapshot

log = logging.getLogger(__name__)

#: Op statuses that hold a record: no new plan until they are done (one plan at a time per record).
BLOCKING = (OpStatus.PENDING, OpStatus.WAITING, OpStatus.PARKED)


def link_for(s: StoreSession, key: RecordKey) -> Link:
    link = s.find_link(key.connection, key.entity, key.side, key.external_id)
    if link is not None:
        return link
    ids = {key.side: key.external_id, key.side.other: None}
    return s.create_link(key.connection, key.entity, ids[Side.APP], ids[Side.QUICKBOOKS])


def side_state(s: StoreSession, link: Link, side: Side) -> SideState | None:
    """The newest journaled state of the linked record on `side`, refs translated to links."""
    external_id = link.external_id(side)
    if external_id is None:
        return None
    entry = s.latest_event(
        RecordKey(connection=link.connection, side=side, entity=link.entity, external_id=external_id)
    )
    if entry is None:
        return None
    event = entry.event
    if event.operation == "delete":
        return SideState(external_id=external_id, version=event.version, fields=None)

    def link_of(entity: EntityType, ext: str) -> str | None:
        found = s.find_link(link.connection, entity, side, ext)
        return found.id if found else None

    return SideState(
        external_id=external_id, version=event.version, fields=to_links(event.fields, side, link_of)
    )


def ledger_of(s: StoreSession, link: Link) -> Ledger:
    result: dict[tuple[Side, int], Mapping[str, Any]] = {}
    for side in Side:
        external_id = link.external_id(side)
        if external_id is not None:
            for entry in s.ledger_for(link.connection, side, link.entity, external_id):
                written = {name: entry.values.get(name) for name in entry.fields}
                result[(side, entry.seq)] = (
                    fields_from_json(link.entity, written) if entry.values else written
                )
    return result


def _create_in_flight(s: StoreSession, key: RecordKey) -> bool:
    """A create we sent to this side may have committed without our knowing its id (a lost response)."""
    return any(
        r.op.kind is OpKind.CREATE and r.op.side is key.side and r.op.entity is key.entity
        for r in s.ops(key.connection, (OpStatus.PENDING, OpStatus.WAITING))
    )


class Decision(NamedTuple):
    link_id: str
    plan: Plan
    #: The ops persisted for the plan's writes, to enqueue once the transaction commits.
    op_ids: tuple[str, ...]


def decide(
    s: StoreSession, key: RecordKey, policy: Policy, now: datetime, *, wait: bool = True
) -> Decision | None:
    """Reconcile the record behind `key` and persist the decision; None when it must wait its turn.

    `wait=False`: None too while another worker holds the record (a transaction deciding many records
    never waits for one of them; the holder's own follow-up, or the next sweep, decides it).
    """
    if s.find_link(key.connection, key.entity, key.side, key.external_id) is None and _create_in_flight(
        s, key
    ):
        # An unknown record on a side we are creating on could be our own create whose answer was
        # lost; deciding now would copy it back as new. Wait until the create resolves and links it.
        return None
    link = link_for(s, key)
    if not s.lock_link(link.id, wait=wait):
        return None
    # Read it again under the lock: an apply that held the lock may have just set its other id (a
    # create landed), and the copy read before would take that new record for a deleted one.
    link = s.get_link(link.id) or link
    snapshot = s.get_snapshot(link.id) or Snapshot(link_id=link.id)
    if snapshot.tombstone:
        s.mark_processed(key, _newest_seq(s, key))
        s.audit(
            key.connection,
            key.entity,
            AuditAction.STALE,
            now,
            link_id=link.id,
            side=key.side,
            external_id=key.external_id,
            detail={"reason": "record was deleted; change ignored"},
        )
        return None
    if s.ops(key.connection, BLOCKING, link_id=link.id):
        return None  # its earlier plan is still being applied; this change is picked up after
    states = {side: side_state(s, link, side) for side in Side}
    base = fields_from_json(link.entity, snapshot.base) if snapshot.base is not None else None
    ledger = ledger_of(s, link)
    plan = reconcile(link.entity, base, states[Side.APP], states[Side.QUICKBOOKS], policy, ledger, now)
    # A value a side refused (a name another record holds) waits for the reviewer: sent again, it
    # would only be refused again.
    open_here = s.list_conflicts(link.connection, open_only=True, link_id=link.id)
    refused = refusals(s, link, open_here)
    plan, held = hold_refused(link.entity, plan, refused)
    op_ids = _persist(s, link, snapshot, states, plan, ledger, now, held)
    if not plan.waits:
        for side, state in states.items():
            if state is not None:
                s.mark_processed(
                    RecordKey(
                        connection=link.connection,
                        side=side,
                        entity=link.entity,
                        external_id=state.external_id,
                    ),
                    state.version.seq,
                )
    return Decision(link.id, plan, op_ids)


def decide_record(
    store: StateStore, key: RecordKey, policy: Policy, clock: Clock, attempts: int = 3
) -> Decision | None:
    """`decide` in a transaction of its own; decided again, in a new one, when another worker's
    transaction won a race on the record (linked it, or opened its conflict, first). The last
    attempt's VersionConflictError is raised."""
    for attempt in range(1, attempts + 1):
        try:
            with store.session() as s:
                return decide(s, key, policy, clock.now())
        except VersionConflictError as error:
            if attempt == attempts:
                raise
            log.debug("deciding %s again (attempt %d): %s", key, attempt + 1, error)
    raise AssertionError("attempts must be at least 1")


def _newest_seq(s: StoreSession, key: RecordKey) -> int:
    entry = s.latest_event(key)
    return entry.event.version.seq if entry else 0


def op_for(link: Link, write: Write) -> Op:
    """A planned write as a persisted op, with its stable id (QuickBooks' requestid)."""
    return Op(
        op_id=uuid.uuid4().hex,
        connection=link.connection,
        link_id=link.id,
        entity=link.entity,
        side=write.side,
        kind=write.kind,
        external_id=write.external_id,
        fields=write.fields,
        expected_seq=write.expected_seq,
        reason=write.reason,
    )


def _persist(
    s: StoreSession,
    link: Link,
    snapshot: Snapshot,
    states: Mapping[Side, SideState | None],
    plan: Plan,
    ledger: Ledger,
    now: datetime,
    held: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    base: dict[str, Any] | None = snapshot.base
    if plan.settled:
        base = {**(base or {}), **fields_to_json(link.entity, plan.settled)}
    seqs = {side: (st.version.seq if st else snapshot.seq(side)) for side, st in states.items()}
    s.save_snapshot(
        snapshot.model_copy(
            update={
                "base": base,
                "app_seq": seqs[Side.APP],
                "quickbooks_seq": seqs[Side.QUICKBOOKS],
                "tombstone": plan.tombstone and not plan.writes,
            }
        )
    )
    op_ids: list[str] = []
    for write in plan.writes:
        op = op_for(link, write)
        s.add_op(op, now)
        op_ids.append(op.op_id)
        s.audit(
            link.connection,
            link.entity,
            AuditAction.DECIDED,
            now,
            side=write.side,
            external_id=write.external_id,
            detail={
                "op_id": op.op_id,
                "kind": write.kind,
                "fields": sorted(write.fields),
                "reason": write.reason,
            },
            link_id=link.id,
        )
    for conflict in plan.conflicts:
        stored = conflict.model_copy(
            update={
                "base": _json(link.entity, conflict.field, conflict.base),
                "app": _json(link.entity, conflict.field, conflict.app),
                "quickbooks": _json(link.entity, conflict.field, conflict.quickbooks),
            }
        )
        opened = s.open_conflict(link.connection, link.id, link.entity, stored, now)
        s.audit(
            link.connection,
            link.entity,
            AuditAction.CONFLICT,
            now,
            detail={"conflict_id": opened.id, "field": conflict.field, "policy": conflict.policy},
            link_id=link.id,
        )
    _close_settled_conflicts(s, link, plan, now, held)
    for wait in plan.waits:
        s.audit(
            link.connection,
            link.entity,
            AuditAction.DECIDED,
            now,
            side=wait.side,
            detail={"waits_for": wait.depends_on.model_dump(mode="json"), "reason": wait.reason},
            link_id=link.id,
        )
    if plan.empty:
        echo = any(st is not None and (side, st.version.seq) in ledger for side, st in states.items())
        action = AuditAction.ECHO_DROPPED if echo else AuditAction.DECIDED
        s.audit(
            link.connection,
            link.entity,
            action,
            now,
            detail={"reasons": list(plan.reasons) or ["nothing to do"]},
            link_id=link.id,
        )
    log.debug(
        "decided %s link=%s writes=%d conflicts=%d",
        link.entity,
        link.id,
        len(plan.writes),
        len(plan.conflicts),
    )
    return tuple(op_ids)


def _close_settled_conflicts(
    s: StoreSession, link: Link, plan: Plan, now: datetime, held: frozenset[str] = frozenset()
) -> None:
    """An open conflict whose field no longer conflicts (the sides agree now, or one side went back
    to the base) needs no reviewer any more."""
    if plan.waits:
        return
    still = {c.field for c in plan.conflicts} | held
    written = {k: v for w in plan.writes for k, v in w.fields.items()}
    for conflict in s.list_conflicts(link.connection, open_only=True, link_id=link.id):
        if conflict.field in still:
            continue
        value = plan.settled.get(conflict.field, written.get(conflict.field))
        close_conflict(
            s, link, conflict, _json(link.entity, conflict.field, value), "ledgersync: sides agree", now
        )


def close_conflict(
    s: StoreSession, link: Link, conflict: Conflict, value: Any, by: str, now: datetime, **detail: Any
) -> Conflict:
    """Resolve `conflict` with `value` (JSON form) and say so in the record's history."""
    resolved = s.resolve_conflict(conflict.id, value, by, now)
    s.audit(
        link.connection,
        link.entity,
        AuditAction.RESOLVED,
        now,
        link_id=link.id,
        detail={"conflict_id": conflict.id, "field": conflict.field, "by": by, **detail},
    )
    return resolved


def _json(entity: EntityType, field: str, value: Any) -> Any:
    if field not in MODELS[entity].model_fields:
        return value  # a pseudo-field such as `_deleted`
    return fields_to_json(entity, {field: value})[field]
