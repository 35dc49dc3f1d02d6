"""Set-based reads and writes: what a page of changed records needs, in a few statements.

Deciding, journaling and recording outcomes one record at a time cost about fifty statements a
change. These methods load the links, snapshots, newest journal entries, ledger entries, blocking ops
and open conflicts of many records at once, and write journal rows, snapshots, ops and audit lines
with one executemany each. Statements are built once, at import, with bound parameters, so SQLAlchemy
finds them in its compiled cache without rebuilding an expression tree per call.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from engine.model import ChangeEvent, EntityType, Side, Version
from engine.plan import Op, OpKind, OpStatus
from engine.state import (
    AppendResult,
    Conflict,
    ConflictStatus,
    JournalEntry,
    JournalStatus,
    LedgerEntry,
    Link,
    OpRecord,
    Processed,
    RecordKey,
    Snapshot,
)
from engine.store import rows
from engine.store import tables as t
from engine.store.base import SessionBase, id_column
from engine.store.errors import LinkExistsError, NotStoredError, SnapshotConflictError

#: Ids per IN list: far below SQLite's limit on bound parameters, and a page is rarely bigger.
CHUNK = 500

T = TypeVar("T")


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _record_of(key: RecordKey) -> dict[str, str]:
    return {
        "b_connection": key.connection,
        "b_side": key.side.value,
        "b_entity": key.entity.value,
        "b_external_id": key.external_id,
    }


_j = t.journal.c
_SAME_RECORD = sa.and_(
    _j.connection == sa.bindparam("b_connection"),
    _j.side == sa.bindparam("b_side"),
    _j.entity == sa.bindparam("b_entity"),
    _j.external_id == sa.bindparam("b_external_id"),
)
_l = t.ledger.c
_MARK_PROCESSED = (
    sa.update(t.journal)
    .where(_SAME_RECORD, _j.seq <= sa.bindparam("b_seq"), _j.status == JournalStatus.NEW.value)
    .values(status=JournalStatus.PROCESSED.value)
)
_s = t.snapshots.c
_UPDATE_SNAPSHOT = (
    sa.update(t.snapshots)
    .where(_s.link_id == sa.bindparam("b_link_id"), _s.revision == sa.bindparam("b_revision"))
    .values(
        base=sa.bindparam("base"),
        app_seq=sa.bindparam("app_seq"),
        quickbooks_seq=sa.bindparam("quickbooks_seq"),
        tombstone=sa.bindparam("tombstone"),
        revision=sa.bindparam("revision"),
    )
)
_SET_APP_ID = (
    sa.update(t.links).where(t.links.c.id == sa.bindparam("b_id")).values(app_id=sa.bindparam("app_id"))
)
_SET_QUICKBOOKS_ID = (
    sa.update(t.links)
    .where(t.links.c.id == sa.bindparam("b_id"))
    .values(quickbooks_id=sa.bindparam("quickbooks_id"))
)
_o = t.ops.c
_SET_OP_STATUS = (
    sa.update(t.ops)
    .where(_o.op_id == sa.bindparam("b_op_id"))
    .values(status=sa.bindparam("status"), updated_at=sa.bindparam("updated_at"), attempts=_o.attempts + 1)
)

_SET_SENT_AS = (
    sa.update(t.ops).where(_o.op_id == sa.bindparam("b_op_id")).values(sent_as=sa.bindparam("sent_as"))
)


class BulkMixin(SessionBase):
    # links

    def links_of(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, Link]:
        """The links holding these ids on `side`, by that id (ids not linked are left out)."""
        column = t.links.c[id_column(side)]
        found: dict[str, Link] = {}
        for chunk in _chunks(sorted(set(external_ids))):
            statement = sa.select(t.links).where(
                t.links.c.connection == connection,
                t.links.c.entity == entity.value,
                self._among(column, chunk),
            )
            for row in self._all(statement):
                found[row[id_column(side)]] = rows.to_link(row)
        return found

    def create_links(self, links: Sequence[Link]) -> None:
        """Insert new links; LinkExistsError (the transaction is over) when an id is linked already."""
        if not links:
            return
        try:
            self._conn.execute(sa.insert(t.links), [link.model_dump(mode="json") for link in links])
        except IntegrityError as error:  # lost a race with another worker
            raise LinkExistsError("a record is already linked", detail=str(error.orig)) from error

    def lock_links(self, link_ids: Collection[str], *, wait: bool = True) -> dict[str, Link]:
        """Hold these links' rows until the transaction ends and read them again, by id.

        `wait=False` (SKIP LOCKED): a link another transaction holds is left out instead of waited
        for. On SQLite, as in `lock_link`, the transaction's write lock already serializes workers.
        """
        found: dict[str, Link] = {}
        for chunk in _chunks(sorted(set(link_ids))):
            statement = (
                sa.select(t.links)
                .where(self._among(t.links.c.id, chunk))
                .order_by(t.links.c.id)  # rows locked in one order: two callers never deadlock
                .with_for_update(skip_locked=not wait)
            )
            for row in self._all(statement):
                found[row["id"]] = rows.to_link(row)
        return found

    def set_link_ids(self, side: Side, ids: Mapping[str, str]) -> None:
        """Set many links' ids on `side` (link id -> external id), in one executemany; LinkExistsError
        (the transaction is over) when another link holds one of them."""
        if not ids:
            return
        column = id_column(side)
        statement = _SET_APP_ID if side is Side.APP else _SET_QUICKBOOKS_ID
        try:
            self._conn.execute(statement, [{"b_id": link_id, column: ext} for link_id, ext in ids.items()])
        except IntegrityError as error:
            raise LinkExistsError("a record is already linked", detail=str(error.orig)) from error

    def get_links(self, link_ids: Collection[str]) -> dict[str, Link]:
        found: dict[str, Link] = {}
        for chunk in _chunks(sorted(set(link_ids))):
            for row in self._all(sa.select(t.links).where(self._among(t.links.c.id, chunk))):
                found[row["id"]] = rows.to_link(row)
        return found

    # snapshots

    def snapshots_of(self, link_ids: Collection[str]) -> dict[str, Snapshot]:
        found: dict[str, Snapshot] = {}
        for chunk in _chunks(sorted(set(link_ids))):
            for row in self._all(sa.select(t.snapshots).where(self._among(_s.link_id, chunk))):
                found[row["link_id"]] = rows.to_snapshot(row)
        return found

    def save_snapshots(self, connection: str, snapshots: Sequence[Snapshot], stored: Collection[str]) -> None:
        """Optimistic saves of many snapshots, as `save_snapshot` does one: each must hold the stored
        revision; `stored` names the links whose snapshot row exists (the rest are inserted).

        SnapshotConflictError when any moved meanwhile (the transaction must be rolled back).
        """
        updates = [
            {
                "b_link_id": s.link_id,
                "b_revision": s.revision,
                "base": s.base,
                "app_seq": s.app_seq,
                "quickbooks_seq": s.quickbooks_seq,
                "tombstone": s.tombstone,
                "revision": s.revision + 1,
            }
            for s in snapshots
            if s.link_id in stored
        ]
        inserts = [
            {**s.model_dump(), "revision": s.revision + 1, "connection": connection}
            for s in snapshots
            if s.link_id not in stored
        ]
        if inserts:
            try:
                self._conn.execute(sa.insert(t.snapshots), inserts)
            except IntegrityError as error:
                raise SnapshotConflictError(
                    "a snapshot was saved meanwhile", detail=str(error.orig)
                ) from error
        if updates:
            result = self._conn.execute(_UPDATE_SNAPSHOT, updates)
            if result.rowcount != len(updates):
                raise SnapshotConflictError(
                    f"{len(updates) - result.rowcount} of {len(updates)} snapshots moved meanwhile"
                )

    # journal

    def latest_events_of(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, JournalEntry]:
        """Each record's journaled event with the highest seq (stale entries excluded), by id."""
        found: dict[str, JournalEntry] = {}
        for chunk in _chunks(sorted(set(external_ids))):
            # The newest version of each record, found through the unique index on (connection, side,
            # entity, external id, seq) for each row: no plan depends on the table's statistics.
            newer = t.journal.alias("newer")
            newest = (
                sa.select(sa.func.max(newer.c.seq))
                .where(
                    newer.c.connection == _j.connection,
                    newer.c.side == _j.side,
                    newer.c.entity == _j.entity,
                    newer.c.external_id == _j.external_id,
                    newer.c.status != JournalStatus.STALE.value,
                )
                .scalar_subquery()
            )
            statement = sa.select(t.journal).where(
                _j.connection == connection,
                _j.side == side.value,
                _j.entity == entity.value,
                self._among(_j.external_id, chunk),
                _j.seq == newest,
            )
            for row in self._all(statement):
                found[row["external_id"]] = rows.to_journal_entry(row)
        return found

    def journaled_seqs(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, int]:
        """Each record's highest journaled version number (any status), by id; ids never journaled are
        left out. Through the journal's unique index; no payload is read."""
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(set(external_ids))):
            statement = (
                sa.select(_j.external_id, sa.func.max(_j.seq).label("seq"))
                .where(
                    _j.connection == connection,
                    _j.side == side.value,
                    _j.entity == entity.value,
                    self._among(_j.external_id, chunk),
                )
                .group_by(_j.external_id)
            )
            for row in self._all(statement):
                found[str(row["external_id"])] = int(row["seq"])
        return found

    def user_edits_of(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, datetime]:
        """When a person last changed each record: the time of its newest journaled version that no
        write of ours produced (none in the ledger), by id; ids with no such version are left out."""
        found: dict[str, datetime] = {}
        for chunk in _chunks(sorted(set(external_ids))):
            # As in `latest_events_of`, through the unique indexes of journal and ledger, row by row:
            # walking a record's versions from the newest, the first that is not ours ends the walk.
            newer = t.journal.alias("newer")
            ours = (
                sa.select(_l.seq)
                .where(
                    _l.connection == newer.c.connection,
                    _l.side == newer.c.side,
                    _l.entity == newer.c.entity,
                    _l.external_id == newer.c.external_id,
                    _l.seq == newer.c.seq,
                )
                .exists()
            )
            newest = (
                sa.select(newer.c.seq)
                .where(
                    newer.c.connection == _j.connection,
                    newer.c.side == _j.side,
                    newer.c.entity == _j.entity,
                    newer.c.external_id == _j.external_id,
                    ~ours,
                )
                .order_by(newer.c.seq.desc())
                .limit(1)
                .scalar_subquery()
            )
            statement = sa.select(_j.external_id, _j.payload).where(
                _j.connection == connection,
                _j.side == side.value,
                _j.entity == entity.value,
                self._among(_j.external_id, chunk),
                _j.seq == newest,
            )
            for row in self._conn.execute(statement):
                found[row.external_id] = Version.model_validate(row.payload["version"]).at
        return found

    def append_events(
        self, events: Sequence[ChangeEvent], now: datetime, processed: Sequence[bool] | None = None
    ) -> list[AppendResult]:
        """`append_event` for many events at once (one read of what is journaled, one insert).

        An event repeated within `events` is a duplicate of its first occurrence. A delivery that
        another worker journals between the read and the insert is left as that worker stored it.
        """
        if not events:
            return []
        flags = list(processed) if processed is not None else [False] * len(events)
        seen: dict[tuple[str, str, str, str], tuple[set[int], int]] = {}
        for group in _group_events(events):
            first = group[0]
            connection, side, entity = first.connection, first.side.value, first.entity.value
            ids = sorted({e.external_id for e in group})
            for chunk in _chunks(ids):
                statement = sa.select(_j.external_id, _j.seq).where(
                    _j.connection == connection,
                    _j.side == side,
                    _j.entity == entity,
                    self._among(_j.external_id, chunk),
                )
                for external_id, seq in self._conn.execute(statement):
                    key = (connection, side, entity, external_id)
                    seqs, newest = seen.get(key, (set(), -1))
                    seqs.add(seq)
                    seen[key] = (seqs, max(newest, seq))
        results: list[AppendResult] = []
        values: list[dict[str, Any]] = []
        for event, done in zip(events, flags, strict=True):
            key = (event.connection, event.side.value, event.entity.value, event.external_id)
            seqs, newest = seen.get(key, (set(), -1))
            seq = event.version.seq
            if seq in seqs:
                results.append(AppendResult.DUPLICATE)
                continue
            stale = newest > seq
            status = JournalStatus.STALE if stale else JournalStatus.PROCESSED if done else JournalStatus.NEW
            seqs.add(seq)
            seen[key] = (seqs, max(newest, seq))
            values.append(
                {
                    "connection": event.connection,
                    "side": event.side.value,
                    "entity": event.entity.value,
                    "external_id": event.external_id,
                    "seq": seq,
                    "payload": event.model_dump(mode="json"),
                    "status": status.value,
                    "received_at": now,
                }
            )
            results.append(AppendResult.STALE if stale else AppendResult.NEW)
        if values:
            self._conn.execute(self._insert(t.journal).on_conflict_do_nothing(), values)
        return results

    def mark_processed_many(self, done: Iterable[Processed]) -> None:
        """`mark_processed` for many records, in one executemany."""
        params = [{**_record_of(p.key), "b_seq": p.seq} for p in done]
        if params:
            self._conn.execute(_MARK_PROCESSED, params)

    # ops, ledger, conflicts

    def blocked_links(
        self, connection: str, link_ids: Collection[str], statuses: Sequence[OpStatus]
    ) -> set[str]:
        """Those of `link_ids` with an op in any of `statuses`."""
        found: set[str] = set()
        for chunk in _chunks(sorted(set(link_ids))):
            statement = (
                sa.select(_o.link_id)
                .where(
                    _o.connection == connection,
                    self._among(_o.link_id, chunk),
                    _o.status.in_([s.value for s in statuses]),
                )
                .distinct()
            )
            found.update(row.link_id for row in self._conn.execute(statement))
        return found

    def creates_in_flight(
        self, connection: str, statuses: Sequence[OpStatus]
    ) -> set[tuple[Side, EntityType]]:
        """(side, entity) of the connection's creates in any of `statuses`."""
        statement = (
            sa.select(_o.side, _o.entity)
            .where(
                _o.connection == connection,
                _o.kind == OpKind.CREATE.value,
                _o.status.in_([s.value for s in statuses]),
            )
            .distinct()
        )
        return {(Side(row.side), EntityType(row.entity)) for row in self._conn.execute(statement)}

    def add_ops(self, ops: Sequence[Op], now: datetime) -> None:
        """`add_op` for many ops, in order (their positions follow the newest stored one)."""
        if not ops:
            return
        top = self._conn.execute(sa.select(sa.func.coalesce(sa.func.max(_o.position), 0))).scalar_one()
        values = [
            {
                **rows.op_values(op),
                "position": top + i,
                "status": OpStatus.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for i, op in enumerate(ops, start=1)
        ]
        try:
            self._conn.execute(self._insert(t.ops).on_conflict_do_nothing(index_elements=["op_id"]), values)
        except IntegrityError as error:
            raise NotStoredError("an op names no stored link", detail=str(error.orig)) from error

    def ops_by_id(self, op_ids: Collection[str]) -> dict[str, OpRecord]:
        found: dict[str, OpRecord] = {}
        for chunk in _chunks(sorted(set(op_ids))):
            for row in self._all(sa.select(t.ops).where(self._among(_o.op_id, chunk))):
                found[row["op_id"]] = rows.to_op_record(row)
        return found

    def op_statuses(self, op_ids: Collection[str]) -> dict[str, OpStatus]:
        """Each stored op's status, by id (ops not stored are left out); nothing else is read."""
        found: dict[str, OpStatus] = {}
        for chunk in _chunks(sorted(set(op_ids))):
            for op_id, status in self._conn.execute(
                sa.select(_o.op_id, _o.status).where(self._among(_o.op_id, chunk))
            ):
                found[op_id] = OpStatus(status)
        return found

    def set_sent_as(self, sent: Mapping[str, str | None]) -> None:
        """How each op (by id) is being sent: a batch's key, SENT_SINGLE, or None (not in doubt)."""
        params = [{"b_op_id": op_id, "sent_as": how} for op_id, how in sent.items()]
        if params:
            self._conn.execute(_SET_SENT_AS, params)

    def ops_applied(self, op_ids: Collection[str], now: datetime) -> None:
        """Many ops become applied, each with one more attempt counted."""
        params = [{"b_op_id": op_id, "status": OpStatus.APPLIED.value, "updated_at": now} for op_id in op_ids]
        if params:
            self._conn.execute(_SET_OP_STATUS, params)

    def ledger_of_records(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, list[LedgerEntry]]:
        """The versions our writes produced, per record id, lowest seq first."""
        l = t.ledger.c  # noqa: E741
        found: dict[str, list[LedgerEntry]] = {}
        for chunk in _chunks(sorted(set(external_ids))):
            statement = (
                sa.select(t.ledger)
                .where(
                    l.connection == connection,
                    l.side == side.value,
                    l.entity == entity.value,
                    self._among(l.external_id, chunk),
                )
                .order_by(l.seq)
            )
            for row in self._all(statement):
                found.setdefault(row["external_id"], []).append(rows.to_ledger_entry(row))
        return found

    def record_writes(self, entries: Sequence[LedgerEntry]) -> None:
        """`record_write` for many entries at once."""
        values = [
            {
                "connection": e.connection,
                "side": e.side.value,
                "entity": e.entity.value,
                "external_id": e.external_id,
                "seq": e.seq,
                "fields": {name: e.values.get(name) for name in sorted(e.fields)},
            }
            for e in entries
        ]
        if values:
            self._conn.execute(self._insert(t.ledger).on_conflict_do_nothing(), values)

    def open_conflicts_of(self, link_ids: Collection[str]) -> dict[str, list[Conflict]]:
        """The open conflicts of each of these links, oldest first (links without any are left out)."""
        c = t.conflicts.c
        found: dict[str, list[Conflict]] = {}
        for chunk in _chunks(sorted(set(link_ids))):
            statement = (
                sa.select(t.conflicts)
                .where(self._among(c.link_id, chunk), c.status == ConflictStatus.OPEN.value)
                .order_by(c.id)
            )
            for row in self._all(statement):
                found.setdefault(row["link_id"], []).append(rows.to_conflict(row))
        return found

    # parked

    def any_parked(self, connection: str, side: Side, entity: EntityType) -> bool:
        p = t.parked_records.c
        statement = (
            sa.select(p.external_id)
            .where(p.connection == connection, p.side == side.value, p.entity == entity.value)
            .limit(1)
        )
        return self._conn.execute(statement).first() is not None


def _group_events(events: Sequence[ChangeEvent]) -> list[list[ChangeEvent]]:
    groups: dict[tuple[str, Side, EntityType], list[ChangeEvent]] = {}
    for event in events:
        groups.setdefault((event.connection, event.side, event.entity), []).append(event)
    return list(groups.values())
