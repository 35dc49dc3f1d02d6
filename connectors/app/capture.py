"""Change capture by polling: (poll key, primary key) order, overlap and de-duplication, late commits.

On PostgreSQL each read runs in one REPEATABLE READ snapshot and keeps the ids of the transactions
that were still running; the next read also returns every row those transactions wrote (by the
row's `xmin`), so a transaction that commits a low `updated_at` or version after a higher one was
read is never missed. See docs/app-connector.md for the exact guarantee.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from connectors.app.codec import EPOCH, Codec, micros
from connectors.app.cursor import (
    CursorState,
    StreamState,
    decode,
    encode,
    finish,
    lower_bound,
    prune_seen,
    prune_seen_reading,
)
from connectors.app.database import is_postgres
from connectors.app.layout import Layout
from connectors.app.records import JournaledIds, Reader, Stored
from connectors.app.tombstones import Tombstones
from engine.model import ChangeEvent, EntityType, Operation, Side
from engine.ports import ChangePage, Clock, Journaled, Rejection

log = logging.getLogger(__name__)

_XID_SPACE = 2**32


class Poller:
    def __init__(
        self,
        connection: str,
        reader: Reader,
        tombstones: Tombstones,
        codec: Codec,
        clock: Clock,
        page_size: int,
    ) -> None:
        self.connection = connection
        self.reader = reader
        self.tombstones = tombstones
        self.codec = codec
        self.clock = clock
        self.page_size = page_size

    def read(
        self, conn: sa.Connection, layout: Layout, cursor: str | None, journaled: Journaled | None = None
    ) -> ChangePage:
        """One page of changes; `conn` is a snapshot transaction on the app database. Rows whose
        version is `journaled` already (our own writes' echoes) move the cursor but are not decoded
        nor handed over."""
        bound = None if journaled is None else functools.partial(journaled, layout.entity)
        state = decode(cursor)
        now = self.clock.now()
        start, running = self._snapshot(conn, now)
        if not state.reading:
            state.start = start if layout.spec.poll_by == "updated_at" else None
            state.rows = StreamState(high=state.rows.high)
            state.tombs = StreamState(high=state.tombs.high, done=layout.tombstone is None)
        out = _Emitter(self, layout, state, now)
        if state.running:
            out.emit_all(self._late(conn, layout, state.running, now, out.seen, bound))
        complete = True
        for name in ("rows", "tombs"):
            stream: StreamState = getattr(state, name)
            if stream.done:
                continue
            page = self._page(conn, layout, name, stream, now, out.seen, bound)
            out.emit_all(page[: self.page_size], name)
            if len(page) > self.page_size:
                last = page[self.page_size - 1]
                top = max(stream.top or last.poll_key, *(s.poll_key for s in page[: self.page_size]))
                after = StreamState(
                    high=stream.high, after=(last.poll_key, last.external_id), after_raw=raw(last), top=top
                )
                setattr(state, name, after)
                complete = False
                break
            tops = [s.poll_key for s in page] + ([stream.top] if stream.top is not None else [])
            covered = StreamState(high=stream.high, top=max(tops) if tops else None)
            setattr(state, name, finish(covered, state.start, layout.spec.poll_by == "updated_at"))
        state.running = running
        if complete:
            overlap = self._overlap(layout)
            state.seen = prune_seen(
                state, {n: lower_bound(getattr(state, n), overlap) for n in ("rows", "tombs")}
            )
            state.start = None
            state.rows = StreamState(high=state.rows.high)
            state.tombs = StreamState(high=state.tombs.high)
        else:
            state.seen = prune_seen_reading(state, self._overlap(layout), layout.spec.poll_by == "updated_at")
        return ChangePage(
            events=tuple(out.events), rejected=tuple(out.rejected), cursor=encode(state), complete=complete
        )

    # reading

    def _snapshot(self, conn: sa.Connection, now: datetime) -> tuple[int, list[int]]:
        """The read's start (microseconds) and, on PostgreSQL, the transactions running at its snapshot."""
        if not is_postgres(conn):
            return micros(now), []
        row = conn.execute(
            sa.text(
                "SELECT pg_current_snapshot()::text AS snap,"
                " (extract(epoch FROM statement_timestamp()) * 1000000)::bigint AS start"
            )
        ).one()
        running = [int(x) for x in row.snap.split(":")[2].split(",") if x]
        return int(row.start), running

    def _late(
        self,
        conn: sa.Connection,
        layout: Layout,
        running: Sequence[int],
        now: datetime,
        known: Collection[tuple[str, int]],
        journaled: JournaledIds | None = None,
    ) -> list[Stored]:
        """Rows (and tombstones) last written by transactions that were running at the last read."""
        xids = sorted({xid % _XID_SPACE for xid in running})
        written_by = sa.literal_column("xmin::text::bigint").in_(xids)
        late = self.reader.select(conn, layout, written_by, now, known=known, journaled=journaled)
        late += self.tombstones.select(conn, layout, written_by, now)
        if late:
            log.info("late commits read", extra={"entity": layout.entity, "rows": len(late)})
        return late

    def _page(
        self,
        conn: sa.Connection,
        layout: Layout,
        name: str,
        stream: StreamState,
        now: datetime,
        known: Collection[tuple[str, int]],
        journaled: JournaledIds | None = None,
    ) -> list[Stored]:
        """The stream's next page (one row more than a page, to tell whether more follow); rows whose
        version is `known` (read before: the overlap brings them again) or `journaled` are not decoded."""
        if name == "rows":
            key, pk = self._poll_column(layout), layout.pk
        else:
            tomb = layout.tombstone
            column = self.tombstones.poll_column(layout)
            assert tomb is not None and column is not None
            key, pk = sa.column(column), sa.column(tomb.key_column)
        where: sa.ColumnElement[bool] = sa.true()
        if stream.after is not None:
            after_key, after_pk = stream.after
            value = self._key_value(layout, after_key, stream.after_raw)
            ident = self._pk_value(layout, name, after_pk)
            # `key >= value` repeats what the OR implies so that the planner seeks the index to the
            # cursor instead of walking it from the start (SQLite does not range-scan an OR).
            where = sa.and_(key >= value, sa.or_(key > value, sa.and_(key == value, pk > ident)))
        elif (low := lower_bound(stream, self._overlap(layout))) is not None:
            where = key >= self._key_value(layout, low)
        limit = self.page_size + 1
        if name == "rows":
            return self.reader.select(
                conn, layout, where, now, order_by=(key, pk), limit=limit, known=known, journaled=journaled
            )
        return self.tombstones.select(conn, layout, where, now, order=True, limit=limit)

    # helpers

    @staticmethod
    def _poll_column(layout: Layout) -> sa.ColumnClause[Any]:
        spec = layout.spec
        column = spec.version_column if spec.poll_by == "version" else spec.updated_at_column
        assert column is not None
        return sa.column(column)

    def _key_value(self, layout: Layout, key: int, stored: Any = None) -> Any:
        """The poll column's value for `key`, or the value as stored when it could not be read as one."""
        if stored is not None:
            if self.codec.sqlite:
                return sa.literal(stored)
            column_type = sa.BigInteger() if layout.spec.poll_by == "version" else sa.DateTime(timezone=True)
            return sa.cast(sa.literal(str(stored)), column_type)
        if layout.spec.poll_by == "version":
            return key
        return self.codec.write_timestamp(EPOCH + timedelta(microseconds=key))

    @staticmethod
    def _pk_value(layout: Layout, stream: str, external_id: str) -> Any:
        integer = layout.integer_key if stream == "rows" else layout.tombstone_key_integer
        return int(external_id) if integer else external_id

    @staticmethod
    def _overlap(layout: Layout) -> int:
        capture = layout.spec.capture
        if layout.spec.poll_by == "version":
            return capture.overlap_versions
        return round(capture.overlap_seconds * 1_000_000)

    def event(self, entity: EntityType, stored: Stored, now: datetime) -> ChangeEvent:
        return ChangeEvent(
            side=Side.APP,
            connection=self.connection,
            entity=entity,
            external_id=stored.external_id,
            version=stored.version,
            observed_at=now,
            operation=Operation.DELETE if stored.deleted else Operation.UPSERT,
            fields=stored.fields,
        )


class _Emitter:
    """Turns stored rows into events once per (id, version), remembering what it returned."""

    def __init__(self, poller: Poller, layout: Layout, state: CursorState, now: datetime) -> None:
        self.poller = poller
        self.layout = layout
        self.state = state
        self.now = now
        self.seen = {(entry[1], entry[2]) for entry in state.seen}
        self.events: list[ChangeEvent] = []
        self.rejected: list[Rejection] = []

    def emit_all(self, stored: Sequence[Stored], stream: str = "rows") -> None:
        for one in stored:
            pair = (one.external_id, one.version.seq)
            if pair in self.seen:
                continue
            self.seen.add(pair)
            self.state.seen.append((stream, one.external_id, one.version.seq, one.poll_key))
            if one.journaled:
                continue  # the journal has it: handing it over would only be dropped there
            if one.invalid is not None:
                self.rejected.append(rejection(self.layout.entity, one))
                continue
            self.events.append(self.poller.event(self.layout.entity, one, self.now))


def rejection(entity: EntityType, stored: Stored) -> Rejection:
    """A row that is no valid record, as the runner parks it (the cursor moves past it all the same)."""
    assert stored.invalid is not None
    log.warning(
        "app row is not a valid record; parked",
        extra={"entity": entity, "record": stored.external_id, "problem": stored.invalid},
    )
    return Rejection(
        entity=entity, external_id=stored.external_id, version=stored.version, reason=stored.invalid
    )


def raw(stored: Stored) -> int | float | str | None:
    """A poll key that could not be read, as the cursor keeps it (to step past it in the database's order)."""
    value = stored.raw_key
    if value is None or isinstance(value, int | float | str):
        return value
    return str(getattr(value, "text", value))
