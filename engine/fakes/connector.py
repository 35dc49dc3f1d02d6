"""The in-memory fake connector: one side of the sync (the app or QuickBooks) as real, deterministic code."""

from __future__ import annotations

import logging
from typing import Any

from engine.errors import ConfigurationError, NotFoundError, RecordRejectedError, UpstreamUnavailableError
from engine.fakes.book import FakeBook, StoredRecord
from engine.fakes.faults import FaultKnobs
from engine.model import ChangeEvent, EntityType, Operation, Side, Version
from engine.plan import Op, OpKind
from engine.ports import Capabilities, ChangePage, Clock, Journaled, WriteResult

log = logging.getLogger(__name__)


class FakeConnector(FaultKnobs):
    """Implements `engine.ports.Connector` in memory for customers, items, invoices and payments.

    Two of them, one per side, run the engine's tests and the in-process demo. The port methods
    (`read_changes`, `fetch`, `write`) honour the fault knobs; the user methods (`create`, `edit`,
    `delete`, `void`, `get`, `all`, `version`) are a person working on that side and never fail on
    purpose. `computes_totals=True` plays QuickBooks: invoice total and balance are computed, never taken.
    See `engine.fakes.book` for the reference rule.
    """

    def __init__(
        self,
        side: Side,
        connection: str,
        clock: Clock,
        *,
        computes_totals: bool = False,
        page_size: int = 50,
    ) -> None:
        super().__init__()
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.connection = connection
        self.clock = clock
        self.page_size = page_size
        #: Writes applied through the port (replays of a stored op_id excluded).
        self.writes = 0
        self._side = side
        self._book = FakeBook(side, clock, computes_totals=computes_totals)
        self._results: dict[str, WriteResult] = {}

    # the Connector port

    @property
    def side(self) -> Side:
        return self._side

    def capabilities(self) -> Capabilities:
        return Capabilities(side=self._side, entities=frozenset(EntityType))

    def read_changes(
        self, entity: EntityType, cursor: str | None, journaled: Journaled | None = None
    ) -> ChangePage:
        """Changes after `cursor`, oldest first, each as the record's current state (like QBO CDC),
        less the versions `journaled` already (as the real connectors leave them out)."""
        self._trip("read_changes")
        changes, more = self._book.changes_after(entity, _after(cursor), self.page_size)
        events: list[ChangeEvent] = []
        seen: set[tuple[str, int]] = set()
        for change in changes:
            event = self._event(entity, change.external_id)
            if (event.external_id, event.version.seq) not in seen:
                seen.add((event.external_id, event.version.seq))
                events.append(event)
        if journaled is not None and events:
            newest = journaled(entity, {e.external_id for e in events})
            events = [e for e in events if e.version.seq > newest.get(e.external_id, -1)]
        # A complete page covers every change so far; a partial one only up to its last change.
        resume = changes[-1].counter if more else self._book.counter
        return ChangePage(events=tuple(events), cursor=str(resume), complete=not more)

    def fetch(self, entity: EntityType, external_id: str) -> ChangeEvent:
        self._trip("fetch")
        if self._book.find(entity, external_id) is None:
            raise NotFoundError(f"{entity} {external_id} never existed on the {self._side} side")
        return self._event(entity, external_id)

    def write(self, op: Op) -> WriteResult:
        """Apply `op` once per `op.op_id`; a repeated op_id gets the stored result back (QBO's requestid)."""
        self._trip("write")
        if op.op_id in self._results:
            log.debug("fake %s replays op %s", self._side, op.op_id)
            return self._results[op.op_id]
        if op.side is not self._side:
            raise ConfigurationError(
                f"op {op.op_id} is for the {op.side} side, this connector is {self._side}"
            )
        self._check_rejected(op)
        result = self._apply(op)
        self.writes += 1
        self._results[op.op_id] = result
        if self._take_after_commit():
            raise UpstreamUnavailableError(f"op {op.op_id}: timed out after the write committed")
        return result

    # the user on this side

    def create(self, entity: EntityType, fields: dict[str, Any]) -> str:
        return self._book.create(entity, fields)

    def edit(self, entity: EntityType, external_id: str, **changes: Any) -> Version:
        return self._book.update(entity, external_id, changes).version

    def delete(self, entity: EntityType, external_id: str) -> Version:
        return self._book.delete(entity, external_id).version

    def void(self, entity: EntityType, external_id: str) -> Version:
        return self._book.void(entity, external_id).version

    def get(self, entity: EntityType, external_id: str) -> dict[str, Any] | None:
        """The record's fields, or None when it never existed or is deleted."""
        stored = self._book.find(entity, external_id)
        return None if stored is None or stored.deleted else stored.fields

    def all(self, entity: EntityType) -> dict[str, dict[str, Any]]:
        """Every record of `entity` that is not deleted, by id, oldest first."""
        return {
            external_id: self._book.live(entity, external_id).fields for external_id in self._book.ids(entity)
        }

    def version(self, entity: EntityType, external_id: str) -> Version:
        """The record's current version (deleted records too); NotFoundError if it never existed."""
        stored = self._book.find(entity, external_id)
        if stored is None:
            raise NotFoundError(f"{entity} {external_id} never existed on the {self._side} side")
        return stored.version

    def is_deleted(self, entity: EntityType, external_id: str) -> bool:
        stored = self._book.find(entity, external_id)
        return stored is not None and stored.deleted

    # internals

    def _apply(self, op: Op) -> WriteResult:
        if op.kind is OpKind.CREATE:
            external_id = self._book.create(op.entity, op.fields)
            return self._result(external_id, self._book.live(op.entity, external_id))
        if op.external_id is None:
            raise RecordRejectedError(f"op {op.op_id}: a {op.kind} needs an external id", code="invalid")
        target, seq = op.external_id, op.expected_seq
        if op.kind is OpKind.UPDATE:
            stored = self._book.update(op.entity, target, op.fields, seq)
        elif op.kind is OpKind.INACTIVATE:
            stored = self._book.inactivate(op.entity, target, seq)
        elif op.kind is OpKind.VOID:
            return self._result(target, self._book.void(op.entity, target, seq))
        else:
            return self._result(target, self._book.delete(op.entity, target, seq), with_fields=False)
        return self._result(target, stored)

    @staticmethod
    def _result(external_id: str, stored: StoredRecord, *, with_fields: bool = True) -> WriteResult:
        # The port's contract: fields are empty for a delete only (a voided record still exists).
        fields = stored.fields if with_fields else {}
        return WriteResult(
            external_id=external_id, version=stored.version, fields=fields, deleted=stored.deleted
        )

    def _event(self, entity: EntityType, external_id: str) -> ChangeEvent:
        stored = self._book.find(entity, external_id)
        assert stored is not None, "only logged or known ids are turned into events"
        return ChangeEvent(
            side=self._side,
            connection=self.connection,
            entity=entity,
            external_id=external_id,
            version=stored.version,
            observed_at=self.clock.now(),
            operation=Operation.DELETE if stored.deleted else Operation.UPSERT,
            fields={} if stored.deleted else stored.fields,
        )


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        after = int(cursor)
    except ValueError:
        after = -1
    if after < 0:
        raise ConfigurationError(f"not a cursor of the fake connector: {cursor!r}")
    return after
