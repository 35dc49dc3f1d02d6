"""The reconciler: a pure function deciding, for one record, what to write where and what to ask a human.

Inputs are the last agreed state (`base`), each side's current state, the policy, and the write
ledger (versions our own writes produced, with the fields each wrote). Output is a `Plan`.

The rules, field by field (values compared after normalization):
- a field changed on one side only flows to the other, if its direction allows;
- changed on both sides to the same value: settled, no write;
- changed on both sides to different values: the field's conflict policy picks a winner, or
  (`manual`) opens a conflict for that field only; `newest_wins` goes by when a person last
  edited each side, never by the time of a write of ours that came after;
- a one-way field always takes its source's value when either side changed it;
- a change that only echoes our own write (its version is in the ledger and the field is one that
  write set) is no change at all. That and content-equal-to-base make the sync loop-free.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime

from engine.diff import changed_fields
from engine.model import (
    QUICKBOOKS_COMPUTED,
    WRITTEN_TOGETHER,
    EntityType,
    Frozen,
    Ref,
    Side,
    Version,
    field_names,
)
from engine.normalize import normalize_value
from engine.plan import ConflictPolicy, DeleteAction, Direction, FieldConflict, OpKind, Plan, Wait, Write
from engine.ports import Policy

#: Versions our own writes produced: (side, seq) -> the fields that write set, with the values it sent.
Ledger = Mapping[tuple[Side, int], Mapping[str, Any]]

_DELETE_KINDS = {
    DeleteAction.INACTIVATE: OpKind.INACTIVATE,
    DeleteAction.DELETE: OpKind.DELETE,
    DeleteAction.VOID: OpKind.VOID,
}

#: The pseudo-field of a record-level conflict: deleted on one side, edited on the other.
DELETED_FIELD = "_deleted"


class SideState(Frozen):
    """A record as one side holds it now; `fields` is None when it is deleted there.

    `user_at` is when a person last changed the record there: the time of its newest version that
    is not our own write. It matters only when the current version is ours (`newest_wins` must not
    take our write for an edit); None there means no version of a person's is held any more.
    """

    external_id: str
    version: Version
    fields: dict[str, Any] | None = None
    user_at: AwareDatetime | None = None

    @property
    def deleted(self) -> bool:
        return self.fields is None


def directions(entity: EntityType, policy: Policy) -> dict[str, Direction]:
    """Every synced field of the entity with its direction; computed fields only ever flow to the app."""
    result: dict[str, Direction] = {}
    for name in field_names(entity):
        direction = policy.direction(entity, name)
        if name in QUICKBOOKS_COMPUTED[entity] and direction is not Direction.NONE:
            direction = Direction.QUICKBOOKS_TO_APP
        if direction is not Direction.NONE:
            result[name] = direction
    return result


def reconcile(
    entity: EntityType,
    base: Mapping[str, Any] | None,
    app: SideState | None,
    qbo: SideState | None,
    policy: Policy,
    ledger: Ledger,
) -> Plan:
    """Decide what to write where for one record. Pure: no I/O, no clock (decisions depend on
    versions and the ledger, never on wall time)."""
    dirs = directions(entity, policy)
    states = {Side.APP: app, Side.QUICKBOOKS: qbo}
    live = {side: s for side, s in states.items() if s is not None and not s.deleted}
    if base is None:
        if len(live) == 1:
            ((side, state),) = live.items()
            return create_plan(entity, side, state, dirs)
        if len(live) == 2:
            return _merge(entity, {}, live, dirs, policy, ledger, first_match=True)
        return Plan(entity=entity, reasons=("nothing exists on either side",))
    if len(live) == 2:
        return _merge(entity, base, live, dirs, policy, ledger, first_match=False)
    if not live:
        return Plan(entity=entity, tombstone=True, reasons=("deleted on both sides",))
    ((survivor, state),) = live.items()
    return _propagate_delete(entity, base, survivor, state, dirs, policy, ledger)


def _flows_to(side: Side, dirs: Mapping[str, Direction], entity: EntityType) -> list[str]:
    computed = QUICKBOOKS_COMPUTED[entity] if side is Side.QUICKBOOKS else frozenset()
    return [f for f, d in dirs.items() if d.writes_to(side) and f not in computed]


def _record_flows_to(side: Side, dirs: Mapping[str, Direction], entity: EntityType) -> bool:
    """Whether whole records (creates, deletes) flow into `side`: some own, non-computed field does."""
    computed = QUICKBOOKS_COMPUTED[entity]
    return any(d.writes_to(side) and f not in computed for f, d in dirs.items())


def create_plan(entity: EntityType, source: Side, state: SideState, dirs: Mapping[str, Direction]) -> Plan:
    """Create the record that exists only on `source` on the other side, if records flow that way."""
    target = source.other
    assert state.fields is not None
    if not _record_flows_to(target, dirs, entity):
        return Plan(entity=entity, reasons=(f"{entity} records do not flow from {source} to {target}",))
    fields = {f: state.fields.get(f) for f in _flows_to(target, dirs, entity)}
    write = Write(
        side=target, kind=OpKind.CREATE, fields=fields, reason=f"new in {source} ({state.external_id})"
    )
    return _hold_unlinked(Plan(entity=entity, writes=(write,)))


def _propagate_delete(
    entity: EntityType,
    base: Mapping[str, Any],
    survivor: Side,
    state: SideState,
    dirs: Mapping[str, Direction],
    policy: Policy,
    ledger: Ledger,
) -> Plan:
    deleted_on = survivor.other
    assert state.fields is not None
    edited = _user_changes(base, state, survivor, dirs, ledger)
    if edited:
        conflict = FieldConflict(
            field=DELETED_FIELD,
            base=False,
            app=deleted_on is Side.APP,
            quickbooks=deleted_on is Side.QUICKBOOKS,
        )
        return Plan(
            entity=entity,
            conflicts=(conflict,),
            reasons=(f"deleted in {deleted_on} while {', '.join(sorted(edited))} changed in {survivor}",),
        )
    return delete_plan(entity, survivor, state, dirs, policy)


def delete_plan(
    entity: EntityType, survivor: Side, state: SideState, dirs: Mapping[str, Direction], policy: Policy
) -> Plan:
    """Carry a delete to the side where the record survives, as the policy says it becomes there."""
    deleted_on = survivor.other
    action = policy.delete_action(entity, survivor)
    if action is DeleteAction.IGNORE or not _record_flows_to(survivor, dirs, entity):
        return Plan(entity=entity, tombstone=True, reasons=(f"deleted in {deleted_on}; kept in {survivor}",))
    kind = _DELETE_KINDS[action]
    fields = {"active": False} if kind is OpKind.INACTIVATE else {}
    write = Write(
        side=survivor,
        kind=kind,
        external_id=state.external_id,
        fields=fields,
        expected_seq=state.version.seq,
        reason=f"deleted in {deleted_on}",
    )
    return Plan(entity=entity, writes=(write,), tombstone=True)


def _user_changes(
    base: Mapping[str, Any], state: SideState, side: Side, dirs: Mapping[str, Direction], ledger: Ledger
) -> frozenset[str]:
    """Synced fields this side changed since base, not counting fields our own write set."""
    assert state.fields is not None
    written = ledger.get((side, state.version.seq), {})
    current = {f: state.fields.get(f) for f in dirs}
    before = {f: base[f] for f in dirs if f in base}
    changed = changed_fields(before, current)
    # A field our write set but that side now holds differently was filled or normalized there
    # (QuickBooks' next DocNumber, a due date from terms): its value counts where it can flow back.
    # Where it cannot (a one-way field), re-asserting ours would only make that side fill it again.
    refilled = {
        f
        for f in changed & written.keys()
        if dirs[f].writes_to(side.other) and normalize_value(f, current[f]) != normalize_value(f, written[f])
    }
    return (changed - written.keys()) | refilled


def _merge(
    entity: EntityType,
    base: Mapping[str, Any],
    live: Mapping[Side, SideState],
    dirs: Mapping[str, Direction],
    policy: Policy,
    ledger: Ledger,
    *,
    first_match: bool,
) -> Plan:
    app, qbo = live[Side.APP], live[Side.QUICKBOOKS]
    assert app.fields is not None and qbo.fields is not None
    differing = changed_fields({f: app.fields.get(f) for f in dirs}, {f: qbo.fields.get(f) for f in dirs})
    if first_match:
        # Two records matched before any base: every difference is a change on both sides.
        changed = {Side.APP: differing, Side.QUICKBOOKS: differing}
    else:
        changed = {side: _user_changes(base, live[side], side, dirs, ledger) for side in live}
    settled = {f: app.fields.get(f) for f in dirs if f not in differing}
    updates: dict[Side, dict[str, Any]] = {Side.APP: {}, Side.QUICKBOOKS: {}}
    conflicts: list[FieldConflict] = []
    reasons: list[str] = []
    for field in sorted(differing):
        by_app, by_qbo = field in changed[Side.APP], field in changed[Side.QUICKBOOKS]
        if not (by_app or by_qbo):
            continue  # both differ from each other but neither from base: an echo artifact, leave it
        direction = dirs[field]
        if direction is Direction.APP_TO_QUICKBOOKS:
            winner = Side.APP
        elif direction is Direction.QUICKBOOKS_TO_APP:
            winner = Side.QUICKBOOKS
        elif first_match and policy.fill_empty(entity, field) and (filled := _filled_side(field, app, qbo)):
            # No base: an empty field was never set on that side, so nobody disagrees; fill it.
            winner = filled
            reasons.append(f"{field}: empty in {filled.other} at first match, filled from {filled}")
        elif by_app and by_qbo:
            rule = policy.conflict_policy(entity, field)
            app_at, qbo_at = (_changed_at(live[side], side, field, ledger) for side in Side)
            decided = _decide(rule, app_at, qbo_at)
            if decided is None:
                conflicts.append(
                    FieldConflict(
                        field=field,
                        base=base.get(field),
                        app=app.fields.get(field),
                        quickbooks=qbo.fields.get(field),
                        policy=rule,
                    )
                )
                continue
            winner = decided
            reasons.append(f"{field}: changed on both sides, {rule} picks {winner}")
        else:
            winner = Side.APP if by_app else Side.QUICKBOOKS
        source = live[winner].fields
        assert source is not None
        updates[winner.other][field] = source.get(field)
    _write_together(entity, updates, app, dirs, conflicts)
    writes = tuple(
        Write(
            side=side,
            kind=OpKind.UPDATE,
            external_id=live[side].external_id,
            fields=fields,
            expected_seq=live[side].version.seq,
            reason=f"{', '.join(sorted(fields))} changed in {side.other}",
        )
        for side, fields in updates.items()
        if fields
    )
    plan = Plan(
        entity=entity, writes=writes, conflicts=tuple(conflicts), settled=settled, reasons=tuple(reasons)
    )
    return _hold_unlinked(plan)


def _write_together(
    entity: EntityType,
    updates: dict[Side, dict[str, Any]],
    source: SideState,
    dirs: Mapping[str, Direction],
    conflicts: list[FieldConflict],
) -> None:
    """Complete a QuickBooks update with the fields that must go with those it changes (`WRITTEN_TOGETHER`),
    from `source` (the app, whose unchanged values are the agreed ones); none held in a conflict or
    being replaced in the app, none that does not flow to QuickBooks."""
    fields = updates[Side.QUICKBOOKS]
    together = WRITTEN_TOGETHER.get(entity)
    if together is None or not fields.keys() & together:
        return
    assert source.fields is not None
    held = {c.field for c in conflicts} | updates[Side.APP].keys()
    for name in together - fields.keys() - held:
        if name in dirs and dirs[name].writes_to(Side.QUICKBOOKS):
            fields[name] = source.fields.get(name)


def _filled_side(field: str, app: SideState, qbo: SideState) -> Side | None:
    """The one side holding a value for `field` when the other holds nothing (None, blank, no items)."""
    assert app.fields is not None and qbo.fields is not None
    app_empty = _empty(normalize_value(field, app.fields.get(field)))
    qbo_empty = _empty(normalize_value(field, qbo.fields.get(field)))
    if app_empty == qbo_empty:
        return None
    return Side.QUICKBOOKS if app_empty else Side.APP


def _empty(value: Any) -> bool:
    return value is None or value in ((), {})


def _changed_at(state: SideState, side: Side, field: str, ledger: Ledger) -> datetime | None:
    """When `field`, changed on `side`, changed there; None when that is no longer known.

    Our own write is no edit: when it made the current version, the change is a person's from before
    (`user_at`), unless it is a value that side filled in for that very write (see `_user_changes`).
    """
    written = ledger.get((side, state.version.seq))
    if written is None or field in written:
        return state.version.at
    return state.user_at


def _decide(rule: ConflictPolicy, app_at: datetime | None, qbo_at: datetime | None) -> Side | None:
    if rule is ConflictPolicy.APP_WINS:
        return Side.APP
    if rule is ConflictPolicy.QUICKBOOKS_WINS:
        return Side.QUICKBOOKS
    if rule is ConflictPolicy.NEWEST_WINS:
        # An edit whose version is no longer held is older than any held; a tie goes to QuickBooks:
        # the books are the record of account.
        if app_at is None or (qbo_at is not None and qbo_at >= app_at):
            return Side.QUICKBOOKS
        return Side.APP
    return None


def _hold_unlinked(plan: Plan) -> Plan:
    """Hold back any write that references a record not linked yet (dependency order)."""
    writes, waits = [], list(plan.waits)
    for write in plan.writes:
        pending = next(_unlinked_refs(write.fields), None)
        if pending is None:
            writes.append(write)
        else:
            waits.append(
                Wait(
                    side=write.side,
                    depends_on=pending,
                    reason=f"waits for {pending.entity} {pending.side}:{pending.id} to be linked",
                )
            )
    return plan.model_copy(update={"writes": tuple(writes), "waits": tuple(waits)})


def _unlinked_refs(value: Any) -> Iterator[Ref]:
    if isinstance(value, Ref):
        if not value.resolved:
            yield value
    elif isinstance(value, Mapping):
        if {"entity", "id"} <= value.keys() and set(value) <= {"entity", "id", "side"}:
            if value.get("side") is not None:
                yield Ref.model_validate(dict(value))
            return
        for v in value.values():
            yield from _unlinked_refs(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _unlinked_refs(v)
