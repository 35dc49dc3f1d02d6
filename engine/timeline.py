"""A record's history as a person reads it: the audit trail in words, one line per thing that happened.

Pure: audit entries in, lines out. Our own echoes and stale re-deliveries are left out (they changed
nothing), and a conflict re-recorded on every re-decision shows once, when it opened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.model import Side
from engine.state import AuditAction, AuditEntry

SIDES = {Side.APP: "the app", Side.QUICKBOOKS: "QuickBooks"}
_QUIET = {AuditAction.ECHO_DROPPED, AuditAction.STALE}


@dataclass(frozen=True)
class Line:
    at: datetime
    text: str
    #: What kind of event, for styling and tests: changed, sent, conflict, resolved, parked, ...
    kind: str


def timeline(entries: Sequence[AuditEntry], label: Callable[[str], str] = str) -> list[Line]:
    """The entries (oldest first) in words; `label` names a field as the reader knows it."""
    lines: list[Line] = []
    conflicts_seen: set[Any] = set()
    #: Sides a record was first seen on, or created on by us (its first read there is our own echo).
    captured: set[Side] = set()
    for entry in entries:
        if entry.action in _QUIET:
            continue
        if entry.action is AuditAction.CONFLICT:
            key = entry.detail.get("conflict_id")
            if key in conflicts_seen:
                continue
            conflicts_seen.add(key)
        line = _line(entry, label, captured)
        if line is not None and (not lines or (lines[-1].text, lines[-1].kind) != (line.text, line.kind)):
            lines.append(line)
    return lines


def _fields(detail: dict[str, Any], label: Callable[[str], str]) -> str:
    names = [label(str(name)) for name in detail.get("fields") or []]
    if not names:
        return ""
    if len(names) > 4:
        return f"{', '.join(names[:3])} and {len(names) - 3} more"
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def _line(entry: AuditEntry, label: Callable[[str], str], captured: set[Side]) -> Line | None:
    d, side = entry.detail, entry.side
    where = SIDES[side] if side is not None else "ledgersync"
    action = entry.action
    if action is AuditAction.CAPTURED:
        if side is None or side in captured:
            return None  # later versions are told by the decision they led to
        captured.add(side)
        return Line(entry.at, f"first seen in {where}", "changed")
    if action is AuditAction.DECIDED:
        if side is None or not d.get("kind"):
            return None
        source = SIDES[side.other]
        fields = _fields(d, label)
        if d["kind"] == "create":
            return Line(entry.at, f"new in {source}: to be created in {where}", "changed")
        if d["kind"] == "update" and fields:
            return Line(entry.at, f"{fields} changed in {source}", "changed")
        return Line(entry.at, f"{d['kind']} in {source}: to be done in {where}", "changed")
    if action is AuditAction.WRITTEN:
        if side is not None:
            captured.add(side)
        fields = _fields(d, label)
        if d.get("kind") == "create":
            return Line(entry.at, f"created in {where}", "sent")
        return Line(entry.at, f"sent to {where}" + (f" ({fields})" if fields else ""), "sent")
    if action is AuditAction.CONFLICT:
        return Line(entry.at, f"conflict on {label(str(d.get('field', '?')))} opened", "conflict")
    if action is AuditAction.RESOLVED:
        by = d.get("by") or "ledgersync"
        how = _choice(str(d.get("choice") or ""))
        text = f"conflict on {label(str(d.get('field', '?')))} resolved by {by}" + (f": {how}" if how else "")
        return Line(entry.at, text, "resolved")
    if action is AuditAction.PARKED:
        why = d.get("error") or d.get("reason") or ""
        verb = "could not be written to" if d.get("op_id") else "could not be read from"
        return Line(entry.at, f"{verb} {where}: {why}", "parked")
    if action is AuditAction.RETRIED:
        return Line(entry.at, f"sent to {where} again by {d.get('by', '?')}", "retried")
    if action is AuditAction.SKIPPED:
        return Line(entry.at, f"set aside by {d.get('by', '?')} (not sent to {where})", "skipped")
    return Line(entry.at, action.value.replace("_", " "), action.value)


def _choice(described: str) -> str:
    if described == "took app":
        return "kept the app's value"
    if described == "took quickbooks":
        return "kept QuickBooks' value"
    if described.startswith("set "):
        return "typed a new value"
    return ""
