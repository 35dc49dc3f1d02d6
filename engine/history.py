"""A record's whole history: what was captured on either side before it was linked, and since."""

from __future__ import annotations

from engine.model import Side
from engine.ports import StoreSession
from engine.state import AuditEntry, Link


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
