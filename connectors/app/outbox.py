"""Outbox capture: read `ledgersync_changes`, which the app (or the installed triggers) fills in the
same transaction as each change.

Exact on both databases. SQLite: writers commit one at a time in outbox id order. PostgreSQL: each
outbox row carries its transaction id. A read cycle starts at the horizon of the last one (the
oldest transaction running anywhere on the server when it began: everything below was committed
then, and read) and takes every committed row at or above it that it has not read yet, the
transactions whose rows it read being kept in the cursor (`outbox_read`) until the horizon passes
them. So a late commit of an old transaction is read later, never skipped, and a long transaction
elsewhere on the server (a report, another app's batch) does not hold every change back until it
ends. Past `READ_LIMIT` kept transactions a cycle reads only below the horizon, as it always could.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.app.capture import Poller, rejection
from connectors.app.cursor import CursorState, StreamState, decode, encode
from connectors.app.database import is_postgres
from connectors.app.layout import Layout
from connectors.app.records import JournaledIds, Reader, Stored
from connectors.app.tombstones import Tombstones
from engine.model import Version
from engine.ports import ChangePage, Journaled

_COLUMNS = ("id", "entity", "record_id", "operation", "seq", "txid", "changed_at")
#: Transactions above the horizon remembered as read (PostgreSQL) before reads wait for the horizon.
READ_LIMIT = 5_000


def outbox_table(name: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in _COLUMNS))


class OutboxReader:
    def __init__(
        self, table: str, poller: Poller, reader: Reader, tombstones: Tombstones, page_size: int
    ) -> None:
        self.table = outbox_table(table)
        self.poller = poller
        self.reader = reader
        self.tombstones = tombstones
        self.page_size = page_size

    def read(
        self, conn: sa.Connection, layout: Layout, cursor: str | None, journaled: Journaled | None = None
    ) -> ChangePage:
        """One page of the outbox's changes (the table itself on the first read). A record whose
        current version is `journaled` already (our own write's echo) is not decoded nor handed over."""
        state = decode(cursor)
        now = self.poller.clock.now()
        horizon = self._horizon(conn)
        if state.outbox is None:
            return self._initial(conn, layout, state, horizon, now)
        t = self.table
        postgres = is_postgres(conn)
        position = t.c.txid if postgres else t.c.id
        where = sa.and_(t.c.entity == layout.entity.value, position >= state.outbox)
        if state.rows.after is None:
            state.start = horizon  # this cycle's horizon: where the next one starts
        beyond = postgres and len(state.outbox_read) < READ_LIMIT
        if not beyond:
            where = sa.and_(where, position < horizon)
        elif state.outbox_read:
            where = sa.and_(where, t.c.txid.notin_(state.outbox_read))
        if state.rows.after is not None:
            after_pos, after_id = state.rows.after
            later = sa.or_(position > after_pos, sa.and_(position == after_pos, t.c.id > int(after_id)))
            where = sa.and_(where, position >= after_pos, later)  # >=: an index seek (see capture)
        query = sa.select(position.label("pos"), t.c.id, t.c.record_id, t.c.seq, t.c.changed_at)
        rows = conn.execute(query.where(where).order_by(position, t.c.id).limit(self.page_size + 1)).all()
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        bound = None if journaled is None else functools.partial(journaled, layout.entity)
        states = self._states(conn, layout, rows, now, bound)
        events = [
            self.poller.event(layout.entity, s, now) for s in states if s.invalid is None and not s.journaled
        ]
        rejected = [rejection(layout.entity, s) for s in states if s.invalid is not None]
        if beyond and rows:
            # Transactions read whole: all but the page's last one when the page was cut there.
            read = {int(row.pos) for row in rows} - ({int(rows[-1].pos)} if more else set())
            state.outbox_read = sorted(set(state.outbox_read) | read)
        if more:
            last = rows[-1]
            state.rows = StreamState(after=(int(last.pos), str(last.id)))
        elif postgres:
            # Everything below the cycle's first horizon was committed then, and read since; above
            # it, what was read is remembered (a cycle past the limit re-reads, never skips).
            state.rows, state.outbox = StreamState(), state.start if state.start is not None else horizon
            state.start = None
            state.outbox_read = [x for x in state.outbox_read if x >= state.outbox]
        else:
            state.rows, state.outbox, state.start = StreamState(), horizon, None
        return ChangePage(
            events=tuple(events), rejected=tuple(rejected), cursor=encode(state), complete=not more
        )

    def deleted(self, conn: sa.Connection, layout: Layout, external_id: str, now: datetime) -> Stored | None:
        """The delete the outbox recorded for a row that is gone, if it recorded one."""
        if layout.spec.capture.mode != "outbox":
            return None
        t = self.table
        row = conn.execute(
            sa.select(t.c.seq, t.c.changed_at)
            .where(t.c.entity == layout.entity.value, t.c.record_id == external_id, t.c.operation == "delete")
            .order_by(t.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else self._gone(external_id, row.seq, row.changed_at, now)

    def _initial(
        self, conn: sa.Connection, layout: Layout, state: CursorState, horizon: int, now: datetime
    ) -> ChangePage:
        """No cursor yet: every row of the table, paged by primary key; then the outbox from `horizon`."""
        where: sa.ColumnElement[bool] = sa.true()
        if state.rows.after is not None:
            where = layout.pk > layout.key(state.rows.after[1])
        page = self.reader.select(conn, layout, where, now, order_by=(layout.pk,), limit=self.page_size + 1)
        more = len(page) > self.page_size
        page = page[: self.page_size]
        events = [self.poller.event(layout.entity, s, now) for s in page if s.invalid is None]
        rejected = [rejection(layout.entity, s) for s in page if s.invalid is not None]
        start = state.start if state.start is not None else horizon
        if more:
            state.rows, state.start = StreamState(after=(0, page[-1].external_id)), start
        else:
            state.rows, state.start, state.outbox = StreamState(), None, start
            for gone in self._all_deleted(conn, layout, now):
                if gone.invalid is None:
                    events.append(self.poller.event(layout.entity, gone, now))
                else:
                    rejected.append(rejection(layout.entity, gone))
        return ChangePage(
            events=tuple(events), rejected=tuple(rejected), cursor=encode(state), complete=not more
        )

    def _all_deleted(self, conn: sa.Connection, layout: Layout, now: datetime) -> list[Stored]:
        """Every record deleted for good: its tombstone, or the outbox's delete row when there is none."""
        found = {s.external_id: s for s in self.tombstones.select(conn, layout, None, now)}
        t = self.table
        gone = conn.execute(
            sa.select(t.c.record_id, sa.func.max(t.c.id).label("last"))
            .where(t.c.entity == layout.entity.value, t.c.operation == "delete")
            .group_by(t.c.record_id)
        ).all()
        for row in gone:
            stored = self.deleted(conn, layout, str(row.record_id), now)
            if stored is not None and row.record_id not in found:
                live = self.reader.select(conn, layout, layout.pk == layout.key(str(row.record_id)), now)
                if not live:
                    found[str(row.record_id)] = stored
        return list(found.values())

    def _states(
        self,
        conn: sa.Connection,
        layout: Layout,
        rows: Sequence[Any],
        now: datetime,
        journaled: JournaledIds | None = None,
    ) -> list[Stored]:
        ids = list(dict.fromkeys(str(row.record_id) for row in rows))
        keys = [layout.key(i) for i in ids]
        live = (
            {
                s.external_id: s
                for s in self.reader.select(conn, layout, layout.pk.in_(keys), now, journaled=journaled)
            }
            if keys
            else {}
        )
        last = {str(row.record_id): row for row in rows}
        found = []
        for external_id in ids:
            stored = live.get(external_id) or self.tombstones.find(conn, layout, external_id, now)
            if stored is None:
                row = last[external_id]
                gone = self.deleted(conn, layout, external_id, now)
                stored = gone or self._gone(external_id, row.seq, row.changed_at, now)
            found.append(stored)
        return found

    def _gone(self, external_id: str, seq: Any, changed_at: Any, now: datetime) -> Stored:
        at = self.poller.codec.timestamp(changed_at) or now
        return Stored(external_id, Version(seq=int(seq or 0), at=at), 0, deleted=True, fields={})

    def _horizon(self, conn: sa.Connection) -> int:
        """Outbox positions below this are final: no running transaction can still add one."""
        if is_postgres(conn):
            value = conn.execute(
                sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            ).scalar()
        else:
            value = conn.execute(sa.select(sa.func.coalesce(sa.func.max(self.table.c.id), 0) + 1)).scalar()
        return int(value or 0)
