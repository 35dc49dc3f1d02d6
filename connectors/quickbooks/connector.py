"""`QboConnector`: QuickBooks as one side of the sync (engine.ports.Connector) over a `QboClient`.

Reads follow `cursor.py` (CDC windows, capped responses split, a query sweep for first reads and old
cursors). Writes go through the mapping and return what QuickBooks answered: no read-back after a write
(reads are metered). Every write carries the op id as `requestid`, so a retry is replayed, not redone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from connectors.quickbooks import cursor as qc
from connectors.quickbooks.client import QboClient
from connectors.quickbooks.mapping import NAME_LISTS, MappingContext, is_deleted, to_canonical
from connectors.quickbooks.sync.batch import BatchWrites
from connectors.quickbooks.sync.writes import DELETED_SEQ, QBO_NAMES, WriteHandler
from engine.errors import LedgersyncError, NotFoundError, RecordRejectedError
from engine.model import ChangeEvent, EntityType, Operation, Side, Version
from engine.plan import Op
from engine.ports import Capabilities, ChangePage, Clock, Journaled, Policy, WriteResult

log = logging.getLogger(__name__)

#: QuickBooks' words for "this id is gone because someone deleted it" (fault 610's detail).
_DELETED_DETAIL = "deleted this transaction"
#: The CDC fault for a changedSince older than 30 days.
_TOO_OLD_DETAIL = "older than fixed days"
_T = TypeVar("_T")
ENTITIES_BY_NAME = {name: entity for entity, name in QBO_NAMES.items()}


class QboConnector:
    """One QuickBooks company, for one connection."""

    def __init__(
        self,
        client: QboClient,
        mapping: MappingContext,
        policy: Policy,
        clock: Clock,
        connection_id: str,
        *,
        overlap: timedelta = qc.DEFAULT_OVERLAP,
        cdc_cap: int = qc.CDC_CAP,
        page_size: int = qc.SWEEP_PAGE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.policy = policy
        self.clock = clock
        self.connection = connection_id
        self.overlap = overlap
        self.cdc_cap = cdc_cap
        self.page_size = page_size
        self._monotonic = monotonic
        self._writes = WriteHandler(client, mapping, policy, self._server_now)
        self._batches = BatchWrites(client, self._writes, client.settings.batch_max_items)

    @property
    def realm_id(self) -> str:
        return self.client.realm_id

    # the Connector port

    @property
    def side(self) -> Side:
        return Side.QUICKBOOKS

    def capabilities(self) -> Capabilities:
        settings = self.client.settings
        size = settings.batch_max_items if settings.batch_writes else 1
        return Capabilities(side=Side.QUICKBOOKS, entities=frozenset(EntityType), batch_size=size)

    def read_changes(
        self, entity: EntityType, cursor: str | None, journaled: Journaled | None = None
    ) -> ChangePage:
        """One CDC read or one sweep page from `cursor`; `complete` is False while more is waiting.
        A CDC answer's versions `journaled` already are left out unmapped (see `_cdc_page`)."""
        position = qc.decode(cursor)
        if qc.too_old(position, self.clock.now()):
            log.info("%s cursor is older than CDC allows: sweeping with queries", entity)
            position = qc.to_sweep(position)
        if position.mode is qc.Mode.CDC:
            since = position.since
            assert since is not None
            try:
                objects, started = self._timed(lambda: self.client.cdc([QBO_NAMES[entity]], since))
            except RecordRejectedError as exc:
                if _TOO_OLD_DETAIL not in str(exc):
                    raise
                log.info("QuickBooks refused the CDC window for %s as too old: sweeping", entity)
                return self.read_changes(entity, qc.encode(qc.to_sweep(position)))
            return self._cdc_page(entity, position, started, objects.get(QBO_NAMES[entity], []), journaled)
        statement = qc.sweep_query(
            QBO_NAMES[entity], position, name_list=entity in NAME_LISTS, page_size=self.page_size
        )
        rows, started = self._timed(lambda: self.client.query(statement))
        step = qc.after_sweep_page(position, started, _stamps(rows), page_size=self.page_size)
        events = tuple(self.events_from(entity, rows))
        log.debug("read %d %s changes (sweep), complete=%s", len(events), entity, step.complete)
        return ChangePage(events=events, cursor=qc.encode(step.cursor), complete=step.complete)

    def read_changes_together(
        self, cursors: Mapping[EntityType, str | None], journaled: Journaled | None = None
    ) -> dict[EntityType, ChangePage] | None:
        """The entities' changes in one CDC call from the oldest of their cursors (CDC takes a list of
        entities, and each call is metered: one call a poll, not one per entity). None, to be read one
        by one, when a cursor needs a sweep or is too old for CDC, or when the answer reached CDC's cap
        of objects across all entities (it may have been cut anywhere)."""
        positions = {entity: qc.decode(cursor) for entity, cursor in cursors.items()}
        now = self.clock.now()
        if len(positions) < 2 or any(
            p.mode is not qc.Mode.CDC or p.since is None or qc.too_old(p, now) for p in positions.values()
        ):
            return None
        since = min(p.since for p in positions.values() if p.since is not None)
        names = [QBO_NAMES[entity] for entity in positions]
        try:
            objects, started = self._timed(lambda: self.client.cdc(names, since))
        except RecordRejectedError as exc:
            if _TOO_OLD_DETAIL not in str(exc):
                raise
            return None
        rows = {entity: objects.get(QBO_NAMES[entity], []) for entity in positions}
        if sum(len(found) for found in rows.values()) >= self.cdc_cap:
            log.info("a CDC answer for %s reached the cap: reading each entity alone", ", ".join(names))
            return None
        return {
            e: self._cdc_page(e, position, started, rows[e], journaled) for e, position in positions.items()
        }

    def _cdc_page(
        self,
        entity: EntityType,
        position: qc.QboCursor,
        started: datetime,
        rows: Sequence[Mapping[str, Any]],
        journaled: Journaled | None = None,
    ) -> ChangePage:
        """The page of a CDC answer's `rows` of `entity`, read from `position`: the versions it has not
        handed over yet, and a cursor that remembers the ones the next read's overlap brings again
        (mapping a record costs more than the rest of reading it, and the overlap is a minute). Of
        those, the versions `journaled` already (the echoes of our own writes, whose results were
        journaled when they were made) are left out unmapped too."""
        step = qc.after_cdc(position, started, _stamps(rows), cap=self.cdc_cap, overlap=self.overlap)
        step = qc.remember(step, rows)
        events = tuple(self.events_from(entity, _not_journaled(entity, qc.unseen(position, rows), journaled)))
        log.debug("read %d %s changes (cdc), complete=%s", len(events), entity, step.complete)
        return ChangePage(events=events, cursor=qc.encode(step.cursor), complete=step.complete)

    def fetch(self, entity: EntityType, external_id: str) -> ChangeEvent:
        try:
            found = self.client.read(QBO_NAMES[entity], external_id)
        except RecordRejectedError as exc:
            if exc.code != "610":
                raise
            if _DELETED_DETAIL in str(exc):
                return self._deleted(entity, external_id, self._server_now())
            raise NotFoundError(f"QuickBooks has no {entity} {external_id}", detail=str(exc)) from exc
        event = self._event(entity, found)
        if event is None:
            raise RecordRejectedError(
                f"QuickBooks {entity} {external_id} cannot be synced", code="unmappable"
            )
        return event

    def write(self, op: Op) -> WriteResult:
        return self._writes.write(op)

    # the optional BatchWriter port (used when `batch_writes` is on, the default: batches are metered)

    def write_many(self, ops: Sequence[Op]) -> list[WriteResult | LedgersyncError]:
        """Any writes that do not depend on each other, in /batch requests; see `sync.batch`."""
        return self._batches.write_many(ops)

    # pacing (engine.apply_batch.PacedWriter): the pipeline fills the minute once its batches are spent

    def room(self) -> tuple[int, int, float]:
        """(batches, spare single writes, wait) the rate budget would let start now."""
        return self.client.room()

    def write_spare(self, op: Op) -> WriteResult:
        """`write`, as a spare call: it leaves the minute's remaining batches their requests."""
        with self.client.spare():
            return self._writes.write(op)

    # for the webhook inbox

    def read_notified(
        self,
        ids: Mapping[EntityType, set[str]],
        since: datetime | None,
        journaled: Journaled | None = None,
    ) -> list[ChangeEvent]:
        """Events for records a webhook named: one CDC call for all of them when `since` is known and
        recent, then a read per id that CDC did not bring back (a capped answer, a clock skew).

        `journaled` gives each id's highest version already journaled: the CDC answer's versions at or
        below it (its overlap brings back a minute of changes read before) are left out unmapped."""
        events: list[ChangeEvent] = []
        missing = {entity: set(found) for entity, found in ids.items() if found}
        if since is not None and missing and since - self.overlap >= qc.oldest_cdc_since(self.clock.now()):
            names = [QBO_NAMES[e] for e in missing]
            answer = self.client.cdc(names, since - self.overlap)
            for entity in list(missing):
                rows = answer.get(QBO_NAMES[entity], [])
                events.extend(self.events_from(entity, _not_journaled(entity, rows, journaled)))
                missing[entity] -= {str(row.get("Id")) for row in rows}
        for entity, entity_ids in missing.items():
            for external_id in sorted(entity_ids):
                try:
                    events.append(self.fetch(entity, external_id))
                except NotFoundError:
                    log.info("webhook named %s %s, which QuickBooks does not have", entity, external_id)
                except RecordRejectedError as exc:
                    log.warning("QuickBooks %s %s cannot be synced: %s", entity, external_id, exc)
        return events

    # internals

    def events_from(self, entity: EntityType, rows: Iterable[Mapping[str, Any]]) -> list[ChangeEvent]:
        events = []
        for row in qc.dedupe(rows):
            event = self._event(entity, row)
            if event is not None:
                events.append(event)
        return events

    def _event(self, entity: EntityType, row: Mapping[str, Any]) -> ChangeEvent | None:
        external_id = str(row.get("Id"))
        if is_deleted(row):
            return self._deleted(entity, external_id, qc.stamp_of(row) or self._server_now())
        try:
            fields, version = to_canonical(entity, row, self.mapping)
        except RecordRejectedError as exc:
            # Not ours to sync (an Inventory item...): logged, and left out of the journal.
            log.warning("skipping QuickBooks %s %s: %s", entity, external_id, exc)
            return None
        return ChangeEvent(
            side=Side.QUICKBOOKS,
            connection=self.connection,
            entity=entity,
            external_id=external_id,
            version=version,
            observed_at=self.clock.now(),
            fields=fields,
        )

    def _deleted(self, entity: EntityType, external_id: str, at: datetime) -> ChangeEvent:
        return ChangeEvent(
            side=Side.QUICKBOOKS,
            connection=self.connection,
            entity=entity,
            external_id=external_id,
            version=Version(seq=DELETED_SEQ, at=at),
            observed_at=self.clock.now(),
            operation=Operation.DELETE,
        )

    def _timed(self, call: Callable[[], _T]) -> tuple[_T, datetime]:
        """Run one read and say when it began, in QuickBooks' clock (its answer's time less the wait)."""
        began = self._monotonic()
        result = call()
        elapsed = self._monotonic() - began
        return result, qc.read_started(self._server_now(), elapsed)

    def _server_now(self) -> datetime:
        """QuickBooks' time of its last answer; our clock when it gave none."""
        return qc.parse_stamp(self.client.last_server_time) or self.clock.now()


def _stamps(rows: Sequence[Mapping[str, Any]]) -> list[datetime]:
    return [stamp for row in rows if (stamp := qc.stamp_of(row)) is not None]


def _not_journaled(
    entity: EntityType, rows: Sequence[Mapping[str, Any]], journaled: Journaled | None
) -> Sequence[Mapping[str, Any]]:
    """`rows` less the versions `journaled` already (all of them when it is None)."""
    if journaled is None or not rows:
        return rows
    newest = journaled(entity, {str(row.get("Id")) for row in rows})
    return [row for row in rows if not _journaled(row, newest.get(str(row.get("Id"))))]


def _journaled(row: Mapping[str, Any], newest: int | None) -> bool:
    """Whether a QBO object's version is at or below `newest`, the highest journaled for its id: its
    SyncToken, or DELETED_SEQ once deleted (an object without a readable token is never taken as
    journaled: its mapping says what is wrong with it)."""
    if newest is None:
        return False
    if is_deleted(row):
        return newest >= DELETED_SEQ
    try:
        return int(str(row.get("SyncToken"))) <= newest
    except ValueError:
        return False
