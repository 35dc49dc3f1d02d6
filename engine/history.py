"""A record's whole history: what was captured on either side before it was linked, and since."""

from __future__ import annotations

from engine.model import Side
from engine.ports import StoreSession
from engine.state import AuditEntry, Link, RecordKey

#: The field that names a record to a person, per entity (in order of preference).
_NAMING = ("display_name", "name", "doc_number", "reference_number")


def record_history(s: StoreSession, link: Link, limit: int = 200) -> list[AuditEntry]:
    """Audit entries of the link and of its ids on each side, oldest first, at most `limit` (newest kept)."""
    entries = {e.id: e for e in s.history(link_id=link.id, limit=limit)}
    for side in Side:
        external_id = link.external_id(side)
        if external_id is not None:
            for e in s.history(connection=link.connection, side=side, external_id=external_id, limit=limit):
                if e.entity is link.entity:
                    entries[e.id] = e
    return [entries[k] for k in sorted(entries)][-limit:]


def record_label(s: StoreSession, link: Link) -> str | None:
    """What a person calls the record (a customer's display name, an invoice's number), from the
    newest state either side sent; None when neither has one."""
    for side in Side:
        external_id = link.external_id(side)
        if external_id is None:
            continue
        key = RecordKey(connection=link.connection, side=side, entity=link.entity, external_id=external_id)
        entry = s.latest_event(key)
        fields = entry.event.fields if entry else {}
        for name in _NAMING:
            if fields.get(name):
                return str(fields[name])
    return None
