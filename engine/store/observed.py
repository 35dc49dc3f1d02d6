"""What /metrics asks the store beyond the counts: the age of the oldest open conflict and of the
oldest change on its way to the other side, and how many records are parked."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from engine.model import Side
from engine.plan import OpStatus
from engine.state import ConflictStatus, JournalStatus, Observed
from engine.store import tables as t
from engine.store.base import SessionBase

_OTHER = {Side.APP.value: Side.QUICKBOOKS.value, Side.QUICKBOOKS.value: Side.APP.value}


class ObservedMixin(SessionBase):
    def observed(self, connection: str) -> Observed:
        """Oldest open conflict, oldest unsynced change per side it came from, parked records."""
        conflicts, journal, ops = t.conflicts.c, t.journal.c, t.ops.c
        oldest_conflict = self._conn.execute(
            sa.select(sa.func.min(conflicts.created_at)).where(
                conflicts.connection == connection, conflicts.status == ConflictStatus.OPEN.value
            )
        ).scalar_one()
        undecided = sa.select(journal.side, sa.func.min(journal.received_at)).where(
            journal.connection == connection, journal.status == JournalStatus.NEW.value
        )
        unapplied = sa.select(ops.side, sa.func.min(ops.created_at)).where(
            ops.connection == connection,
            ops.status.in_([OpStatus.PENDING.value, OpStatus.WAITING.value]),
        )
        oldest: dict[str, datetime] = {}
        found = [(side, at) for side, at in self._conn.execute(undecided.group_by(journal.side))]
        # An op to one side carries a change read from the other.
        found += [(_OTHER[side], at) for side, at in self._conn.execute(unapplied.group_by(ops.side))]
        for side, at in found:
            if at is not None:
                oldest[side] = min(oldest.get(side, at), at)
        parked = self._conn.execute(
            sa.select(sa.func.count())
            .select_from(t.parked_records)
            .where(t.parked_records.c.connection == connection)
        ).scalar_one()
        return Observed(oldest_open_conflict=oldest_conflict, oldest_unsynced=oldest, parked_records=parked)
