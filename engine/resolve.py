"""Resolving a conflict from the review queue: the reviewer's choice becomes a plan like any other."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.decide import BLOCKING, close_conflict, op_for, side_state
from engine.errors import ConfigurationError, NotFoundError, VersionConflictError
from engine.model import EntityType, Frozen, Side, fields_from_json, fields_to_json
from engine.normalize import normalize_value
from engine.plan import OpKind, Plan, Write
from engine.ports import Policy, StoreSession
from engine.reconcile import DELETED_FIELD, SideState, create_plan, delete_plan, directions
from engine.state import Conflict, ConflictStatus, Snapshot


class Choice(Frozen):
    """Take one side's value, or set a value typed by the reviewer (JSON form)."""

    take: Side | None = None
    value: Any = None

    def describe(self) -> str:
        return f"took {self.take}" if self.take is not None else f"set {self.value!r}"


def resolution_plan(
    entity: EntityType, field: str, choice: Choice, states: dict[Side, SideState | None], policy: Policy
) -> tuple[Plan, Any]:
    """Pure: the writes that make both sides hold the chosen value, and that value (python form)."""
    if field == DELETED_FIELD:
        return _resolve_delete(entity, choice, states, policy), choice.take == _deleted_side(states)
    if choice.take is not None:
        state = states[choice.take]
        if state is None or state.fields is None:
            raise NotFoundError(f"the {choice.take} copy of this {entity} is gone; set a value instead")
        value = state.fields.get(field)
    else:
        value = fields_from_json(entity, {field: choice.value})[field]
    writes = []
    for side, state in states.items():
        if state is None or state.fields is None:
            continue
        if normalize_value(field, state.fields.get(field)) != normalize_value(field, value):
            writes.append(
                Write(
                    side=side,
                    kind=OpKind.UPDATE,
                    external_id=state.external_id,
                    fields={field: value},
                    expected_seq=state.version.seq,
                    reason=f"conflict on {field} resolved: {choice.describe()}",
                )
            )
    return Plan(entity=entity, writes=tuple(writes)), value


def _deleted_side(states: dict[Side, SideState | None]) -> Side | None:
    return next((side for side, st in states.items() if st is None or st.fields is None), None)


def _resolve_delete(
    entity: EntityType, choice: Choice, states: dict[Side, SideState | None], policy: Policy
) -> Plan:
    deleted = _deleted_side(states)
    if choice.take is None or deleted is None:
        raise ConfigurationError("a delete conflict is resolved by taking a side (the delete, or the edit)")
    survivor = deleted.other
    state = states[survivor]
    assert state is not None
    dirs = directions(entity, policy)
    if choice.take is deleted:
        return delete_plan(entity, survivor, state, dirs, policy)
    return create_plan(entity, survivor, state, dirs)  # bring the record back where it was deleted


def resolve(
    s: StoreSession, conflict_id: int, choice: Choice, by: str, policy: Policy, now: datetime
) -> Conflict:
    """Close the conflict and persist the ops that carry the choice to both sides, in one transaction."""
    conflict = s.get_conflict(conflict_id)
    if conflict is None:
        raise NotFoundError(f"no conflict {conflict_id}")
    if conflict.status is ConflictStatus.RESOLVED:
        raise VersionConflictError(
            f"conflict {conflict_id} is already resolved", detail=f"by {conflict.resolved_by}"
        )
    link = s.get_link(conflict.link_id)
    if link is None:
        raise NotFoundError(f"conflict {conflict_id} names no link")
    s.lock_link(link.id)
    if s.ops(link.connection, BLOCKING, link_id=link.id):
        raise ConfigurationError(
            f"{link.entity} {link.id} still has writes in flight; resolve it after they finish"
        )
    states = {side: side_state(s, link, side) for side in Side}
    plan, value = resolution_plan(link.entity, conflict.field, choice, states, policy)
    snapshot = s.get_snapshot(link.id) or Snapshot(link_id=link.id)
    if conflict.field != DELETED_FIELD:
        settled = {} if plan.writes else fields_to_json(link.entity, {conflict.field: value})
        s.save_snapshot(snapshot.model_copy(update={"base": {**(snapshot.base or {}), **settled}}))
        stored_value = fields_to_json(link.entity, {conflict.field: value})[conflict.field]
    else:
        stored_value = value
        if choice.take is not _deleted_side(states):
            # The record comes back on the side that deleted it: a fresh id there, no tombstone.
            gone = _deleted_side(states)
            assert gone is not None
            s.set_link_id(link.id, gone, None)
            s.save_snapshot(snapshot.model_copy(update={"tombstone": False}))
    for write in plan.writes:
        s.add_op(op_for(link, write), now)
    writes = [w.side for w in plan.writes]
    return close_conflict(s, link, conflict, stored_value, by, now, choice=choice.describe(), writes=writes)
