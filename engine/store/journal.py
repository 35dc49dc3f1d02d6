"""Journal and webhook inbox: every captured change and raw webhook body, stored before anything acts."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from engine.model import ChangeEvent, EntityType, Side
from engine.state import AppendResult, InboxEntry, JournalEntry, JournalStatus, Processed, RecordKey
from engine.store import rows
from engine.store import tables as t
from engine.store.base import record_filter
from engine.store.bulk import BulkMixin
from engine.store.errors import NotStoredError

log = logging.getLogger(__name__)


def _context(event: ChangeEvent) -> dict[str, object]:
    return {
        "connection": event.connection,
        "side": event.side.value,
        "entity": event.entity.value,
        "external_id": event.external_id,
        "seq": event.version.seq,
    }


class JournalMixin(BulkMixin):
    def append_event(self, event: ChangeEvent, now: datetime, *, processed: bool = False) -> AppendResult:
        """Journal one event, keyed by (connection, side, entity, external id, version seq).

        NEW: never seen; stored with status new (or processed, when the caller has decided it already:
        our own write's echo that restates the base). DUPLICATE: that exact version is already journaled;
        nothing changes. STALE: a higher version of the record is already journaled; the event is still
        recorded (status stale) for the trail, but is never reconciled.
        """
        key = RecordKey(
            connection=event.connection, side=event.side, entity=event.entity, external_id=event.external_id
        )
        same_record = record_filter(t.journal, key)
        seen = self._one(sa.select(t.journal.c.id).where(same_record, t.journal.c.seq == event.version.seq))
        if seen is not None:
            log.debug("duplicate delivery", extra=_context(event))
            return AppendResult.DUPLICATE
        newest = self._conn.execute(sa.select(sa.func.max(t.journal.c.seq)).where(same_record)).scalar()
        stale = newest is not None and newest > event.version.seq
        insert = self._insert(t.journal).values(
            connection=event.connection,
            side=event.side.value,
            entity=event.entity.value,
            external_id=event.external_id,
            seq=event.version.seq,
            payload=event.model_dump(mode="json"),
            status=(
                JournalStatus.STALE if stale else JournalStatus.PROCESSED if processed else JournalStatus.NEW
            ).value,
            received_at=now,
        )
        # Another worker may journal the same delivery between our check and this insert.
        stored = self._conn.execute(insert.on_conflict_do_nothing().returning(t.journal.c.id)).first()
        if stored is None:
            log.debug("duplicate delivery (concurrent)", extra=_context(event))
            return AppendResult.DUPLICATE
        if stale:
            log.debug("stale version journaled", extra={**_context(event), "newest_seq": newest})
            return AppendResult.STALE
        return AppendResult.NEW

    def latest_event(self, key: RecordKey) -> JournalEntry | None:
        """The record's journaled event with the highest seq, stale entries excluded (any status else)."""
        row = self._one(
            sa.select(t.journal)
            .where(record_filter(t.journal, key), t.journal.c.status != JournalStatus.STALE.value)
            .order_by(t.journal.c.seq.desc())
            .limit(1)
        )
        return None if row is None else rows.to_journal_entry(row)

    def pending_records(self, connection: str, limit: int = 100) -> list[RecordKey]:
        """Distinct records with journal entries still new, the one waiting longest first.

        Read in pages of new entries in id order (the (connection, status, id) index, stopping at
        `limit` records), never grouped in the database: a GROUP BY lets SQLite's planner walk the
        unique index over the whole journal (100 ms at 200k entries, however few are new)."""
        j = t.journal
        found: dict[tuple[str, str, str], None] = {}
        after = None
        page = 4 * limit
        while len(found) < limit:
            statement = (
                sa.select(j.c.id, j.c.side, j.c.entity, j.c.external_id)
                .where(j.c.connection == connection, j.c.status == JournalStatus.NEW.value)
                .order_by(j.c.id)
                .limit(page)
            )
            if after is not None:
                statement = statement.where(j.c.id > after)
            rows = self._conn.execute(statement).all()
            for row in rows:
                found.setdefault((row.side, row.entity, row.external_id))
                if len(found) == limit:
                    break
            if len(rows) < page:
                break
            after = rows[-1].id
        return [
            RecordKey(connection=connection, side=Side(side), entity=EntityType(entity), external_id=key)
            for side, entity, key in found
        ]

    def count_pending_records(self, connection: str) -> int:
        """How many records `pending_records` would list with no limit, counted in the server."""
        j = t.journal
        distinct = (
            sa.select(j.c.side, j.c.entity, j.c.external_id)
            .where(j.c.connection == connection, j.c.status == JournalStatus.NEW.value)
            .group_by(j.c.side, j.c.entity, j.c.external_id)
            .subquery()
        )
        return int(self._conn.execute(sa.select(sa.func.count()).select_from(distinct)).scalar_one())

    def mark_processed(self, key: RecordKey, up_to_seq: int) -> None:
        """The record's new entries with seq <= up_to_seq become processed (stale ones stay stale)."""
        self.mark_processed_many([Processed(key, up_to_seq)])

    def inbox_add(self, body: bytes, now: datetime, realm_id: str | None = None) -> int:
        """Store a raw webhook body (unprocessed) for the company `realm_id` and return its id."""
        result = self._conn.execute(
            sa.insert(t.inbox)
            .values(body=body, received_at=now, processed=False, realm_id=realm_id)
            .returning(t.inbox.c.id)
        )
        return int(result.scalar_one())

    def inbox_pending(self, limit: int = 100, realm_id: str | None = None) -> list[InboxEntry]:
        """Unprocessed webhook bodies, oldest first: all of them, or those of the company `realm_id`
        (and those stored before deliveries were routed by company)."""
        pending: sa.ColumnElement[bool] = t.inbox.c.processed.is_(False)
        if realm_id is not None:
            pending = sa.and_(pending, sa.or_(t.inbox.c.realm_id == realm_id, t.inbox.c.realm_id.is_(None)))
        statement = sa.select(t.inbox).where(pending).order_by(t.inbox.c.id).limit(limit)
        return [rows.to_inbox_entry(r) for r in self._all(statement)]

    def inbox_realms(self) -> set[str | None]:
        """The companies with unprocessed webhook bodies (None for a body stored before deliveries
        were routed by company): one indexed query, whatever the number of companies."""
        statement = sa.select(t.inbox.c.realm_id).where(t.inbox.c.processed.is_(False)).distinct()
        return {row.realm_id for row in self._all(statement)}

    def inbox_kept(self, limit: int = 100) -> list[InboxEntry]:
        """Bodies kept with an error (malformed, or with unreadable events), for a person; newest first."""
        statement = (
            sa.select(t.inbox).where(t.inbox.c.error.is_not(None)).order_by(t.inbox.c.id.desc()).limit(limit)
        )
        return [rows.to_inbox_entry(r) for r in self._all(statement)]

    def inbox_done(self, entry_id: int, error: str | None = None) -> None:
        """Mark a body processed; `error` records why it could not be used (it is not retried)."""
        result = self._conn.execute(
            sa.update(t.inbox).where(t.inbox.c.id == entry_id).values(processed=True, error=error)
        )
        if result.rowcount != 1:
            raise NotStoredError(f"no inbox entry {entry_id}")
