"""Values a side refused (a rename into a name another record holds), held in the review queue.

A refusal is an open conflict on one field whose newest `conflict` audit entry names the side that
refused the value and why (`refused_by`, `reason`). While it is open, a plan does not send that side
the value it refused: it would only be refused again, and each try would look like progress. Any other
value (the app renamed again, a reviewer's choice) is written as usual and settles the conflict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from engine.model import EntityType, Side, fields_to_json
from engine.normalize import normalize_value
from engine.plan import ConflictPolicy, FieldConflict, Op, Plan
from engine.ports import StoreSession
from engine.state import AuditAction, AuditLine, Conflict, Link

#: The audit detail keys that make a conflict a refusal.
REFUSED_BY = "refused_by"
REASON = "reason"
#: Audit lines of a record read to find its conflicts' entries. A refusal older than these (a record
#: edited very often meanwhile) is tried once more, and is refused and opened again: nothing is lost.
HISTORY = 1000


class Refusal(NamedTuple):
    conflict: Conflict
    #: The side that refused the value.
    side: Side
    reason: str

    @property
    def refused_value(self) -> Any:
        """The value (JSON form) the side refused: the other side's value in the conflict."""
        return self.conflict.app if self.side is Side.QUICKBOOKS else self.conflict.quickbooks


def open_refusal(
    s: StoreSession, link: Link, op: Op, field: str, holds: Any, reason: str, now: datetime
) -> Conflict:
    """Open (or refresh) the conflict on `field` whose value in `op` its side refused (that side
    `holds` the value it keeps, python form); the audit line says who refused it and why."""
    snapshot = s.get_snapshot(link.id)
    values = {
        op.side: fields_to_json(op.entity, {field: holds})[field],
        op.side.other: fields_to_json(op.entity, {field: op.fields[field]})[field],
    }
    conflict = s.open_conflict(
        link.connection,
        link.id,
        link.entity,
        FieldConflict(
            field=field,
            base=(snapshot.base or {}).get(field) if snapshot else None,
            app=values[Side.APP],
            quickbooks=values[Side.QUICKBOOKS],
            policy=ConflictPolicy.MANUAL,
        ),
        now,
    )
    detail = {
        "conflict_id": conflict.id,
        "field": field,
        "policy": ConflictPolicy.MANUAL.value,
        REFUSED_BY: op.side.value,
        REASON: reason,
    }
    s.audit_many([AuditLine(link.connection, link.entity, AuditAction.CONFLICT, now, link.id, detail=detail)])
    return conflict


def refusals(s: StoreSession, link: Link, conflicts: Iterable[Conflict]) -> dict[str, Refusal]:
    """The refusals among `conflicts` (open ones) that are the link's, by field."""
    mine = {c.id: c for c in conflicts if c.link_id == link.id}
    if not mine:
        return {}
    newest: dict[int, Mapping[str, Any]] = {}
    for entry in s.history(link_id=link.id, limit=HISTORY):
        if entry.action is AuditAction.CONFLICT and entry.detail.get("conflict_id") in mine:
            newest[entry.detail["conflict_id"]] = entry.detail  # oldest first: the last one counts
    found: dict[str, Refusal] = {}
    for conflict_id, detail in newest.items():
        if detail.get(REFUSED_BY) in (Side.APP.value, Side.QUICKBOOKS.value):
            conflict = mine[conflict_id]
            found[conflict.field] = Refusal(conflict, Side(detail[REFUSED_BY]), str(detail.get(REASON, "")))
    return found


def refusal_reasons(s: StoreSession, link: Link, conflicts: Iterable[Conflict]) -> dict[int, str]:
    """Why each refusal among `conflicts` exists, by conflict id (for the review queue)."""
    return {r.conflict.id: r.reason for r in refusals(s, link, conflicts).values()}


def hold_refused(entity: EntityType, plan: Plan, held: Mapping[str, Refusal]) -> tuple[Plan, frozenset[str]]:
    """Pure: `plan` without the writes of a value to the side that refused it, and the fields held."""
    if not held:
        return plan, frozenset()
    writes = []
    kept: set[str] = set()
    for write in plan.writes:
        fields = {
            name: value
            for name, value in write.fields.items()
            if not (name in held and held[name].side is write.side and _same(entity, name, value, held[name]))
        }
        kept |= write.fields.keys() - fields.keys()
        if len(fields) == len(write.fields):
            writes.append(write)
        elif fields:
            writes.append(write.model_copy(update={"fields": fields}))
    reasons = tuple(f"{name}: held for review, {held[name].side} refused it" for name in sorted(kept))
    return plan.model_copy(update={"writes": tuple(writes), "reasons": plan.reasons + reasons}), frozenset(
        kept
    )


def _same(entity: EntityType, field: str, value: Any, refusal: Refusal) -> bool:
    sent = fields_to_json(entity, {field: value})[field]
    return bool(normalize_value(field, sent) == normalize_value(field, refusal.refused_value))
