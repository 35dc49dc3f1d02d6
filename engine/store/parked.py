"""Records parked at capture: one row per record a side could not hand over, until it reads well again."""

from __future__ import annotations

import sqlalchemy as sa

from engine.model import EntityType, Side
from engine.state import ParkedRecord, RecordKey
from engine.store import rows
from engine.store import tables as t
from engine.store.base import SessionBase, record_filter


class ParkedMixin(SessionBase):
    def park_record(self, record: ParkedRecord) -> bool:
        """Insert the record's entry, or refresh its version, reason and check time (keeping `parked_at`).

        True when the record was not parked yet or is parked now for another reason.
        """
        key = record.key
        before = self._one(sa.select(t.parked_records.c.reason).where(record_filter(t.parked_records, key)))
        insert = self._insert(t.parked_records).values(
            connection=record.connection,
            side=record.side.value,
            entity=record.entity.value,
            external_id=record.external_id,
            seq=record.seq,
            reason=record.reason,
            parked_at=record.parked_at,
            checked_at=record.checked_at,
        )
        changed = {name: insert.excluded[name] for name in ("seq", "reason", "checked_at")}
        self._conn.execute(
            insert.on_conflict_do_update(
                index_elements=["connection", "side", "entity", "external_id"], set_=changed
            )
        )
        return before is None or before["reason"] != record.reason

    def unpark_record(self, key: RecordKey, seq: int | None = None) -> bool:
        """Delete the record's entry (when `seq` is given: only an entry parked at or below it)."""
        statement = sa.delete(t.parked_records).where(record_filter(t.parked_records, key))
        if seq is not None:
            statement = statement.where(t.parked_records.c.seq <= seq)
        return bool(self._conn.execute(statement).rowcount)

    def parked_records(
        self, connection: str, side: Side | None = None, entity: EntityType | None = None
    ) -> list[ParkedRecord]:
        c = t.parked_records.c
        statement = sa.select(t.parked_records).where(c.connection == connection)
        if side is not None:
            statement = statement.where(c.side == side.value)
        if entity is not None:
            statement = statement.where(c.entity == entity.value)
        ordered = statement.order_by(c.checked_at, c.entity, c.external_id)
        return [rows.to_parked_record(row) for row in self._all(ordered)]
