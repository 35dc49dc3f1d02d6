"""The fake connector's records: storage, versions, the change log, and the rules every change obeys.

Reference rule: every `Ref` in the fields a change *sends* (all fields for a create; only the sent
top-level fields for an update or edit) must name a record of the expected entity (invoice.customer and
payment.customer a customer, line.item an item, application.invoice an invoice) that exists on this
side and is not deleted; `Ref.side` must be this side or None (None is read as this side's id). A
violation is a RecordRejectedError with code "invalid_reference", as QuickBooks answers 610/2500.
Stored records carry every reference as `Ref(side=<this side>)`. Inactive records may be referenced.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from engine.errors import NotFoundError, RecordRejectedError, VersionConflictError
from engine.fakes import rules
from engine.model import (
    QUICKBOOKS_COMPUTED,
    EntityType,
    Invoice,
    Payment,
    Record,
    Side,
    Version,
    parse_record,
    record_fields,
)
from engine.plan import OpKind
from engine.ports import Clock

log = logging.getLogger(__name__)


@dataclass
class StoredRecord:
    record: Record
    seq: int
    at: datetime
    deleted: bool = False
    voided: bool = False

    @property
    def fields(self) -> dict[str, Any]:
        """A fresh dict of the canonical fields (python form): callers may keep or change it."""
        return record_fields(self.record)

    @property
    def version(self) -> Version:
        return Version(seq=self.seq, at=self.at)


@dataclass(frozen=True)
class LoggedChange:
    counter: int
    entity: EntityType
    external_id: str


class FakeBook:
    """One side's records. Every change bumps the record's seq and appends to the change log."""

    def __init__(self, side: Side, clock: Clock, *, computes_totals: bool = False) -> None:
        self.side = side
        self.clock = clock
        self.computes_totals = computes_totals
        self._records: dict[tuple[EntityType, str], StoredRecord] = {}
        self._log: list[LoggedChange] = []
        self._last_id = 0

    @property
    def counter(self) -> int:
        """The global change counter: how many changes were ever logged."""
        return len(self._log)

    # reading

    def find(self, entity: EntityType, external_id: str) -> StoredRecord | None:
        return self._records.get((entity, external_id))

    def live(self, entity: EntityType, external_id: str) -> StoredRecord:
        stored = self.find(entity, external_id)
        if stored is None or stored.deleted:
            state = "was deleted" if stored else "does not exist"
            raise NotFoundError(f"{entity} {external_id} {state} on the {self.side} side")
        return stored

    def ids(self, entity: EntityType) -> list[str]:
        """Ids of the entity's records that are not deleted, oldest first."""
        return [key[1] for key, stored in self._records.items() if key[0] is entity and not stored.deleted]

    def changes_after(self, entity: EntityType, after: int, limit: int) -> tuple[list[LoggedChange], bool]:
        """Up to `limit` logged changes of `entity` with counter > `after`, and whether more remain."""
        taken: list[LoggedChange] = []
        for change in self._log[max(after, 0) :]:
            if change.entity is not entity:
                continue
            if len(taken) == limit:
                return taken, True
            taken.append(change)
        return taken, False

    # changing

    def create(self, entity: EntityType, fields: Mapping[str, Any]) -> str:
        record = self._validate(entity, self._sendable(entity, fields), keys=None)
        self._last_id += 1
        external_id = str(self._last_id)
        self._commit(entity, external_id, record)
        return external_id

    def update(
        self,
        entity: EntityType,
        external_id: str,
        changes: Mapping[str, Any],
        expected_seq: int | None = None,
    ) -> StoredRecord:
        """Merge `changes` (a sparse update) into the record."""
        stored = self._writable(entity, external_id, expected_seq)
        sent = self._sendable(entity, changes)
        record = self._validate(entity, {**stored.fields, **sent}, keys=sent.keys())
        return self._commit(entity, external_id, record, voided=stored.voided)

    def inactivate(
        self, entity: EntityType, external_id: str, expected_seq: int | None = None
    ) -> StoredRecord:
        rules.check_kind(self.side, entity, OpKind.INACTIVATE)
        stored = self._writable(entity, external_id, expected_seq)
        return self._commit(entity, external_id, stored.record.model_copy(update={"active": False}))

    def void(self, entity: EntityType, external_id: str, expected_seq: int | None = None) -> StoredRecord:
        rules.check_kind(self.side, entity, OpKind.VOID)
        stored = self._writable(entity, external_id, expected_seq)
        return self._commit(entity, external_id, rules.voided(stored.record), voided=True)

    def delete(self, entity: EntityType, external_id: str, expected_seq: int | None = None) -> StoredRecord:
        rules.check_kind(self.side, entity, OpKind.DELETE)
        stored = self._writable(entity, external_id, expected_seq)
        stored.deleted = True
        self._touch(entity, external_id, stored)
        if self.computes_totals and isinstance(stored.record, Payment):
            self._rebalance(rules.invoices_paid_by(stored.record))
        return stored

    # internals

    def _writable(self, entity: EntityType, external_id: str, expected_seq: int | None) -> StoredRecord:
        stored = self.live(entity, external_id)
        if expected_seq is not None and expected_seq != stored.seq:
            raise VersionConflictError(
                f"{entity} {external_id} on the {self.side} side is at seq {stored.seq}",
                detail=f"the write expected seq {expected_seq}",
            )
        return stored

    def _sendable(self, entity: EntityType, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The fields a write may set: a side that computes totals ignores the values sent for them."""
        if self.computes_totals:
            return rules.without(fields, QUICKBOOKS_COMPUTED[entity])
        return dict(fields)

    def _validate(self, entity: EntityType, data: Mapping[str, Any], keys: Collection[str] | None) -> Record:
        try:
            record = parse_record(entity, data)
        except ValidationError as exc:
            raise RecordRejectedError(
                f"invalid {entity} on the {self.side} side", code="invalid", detail=str(exc)
            ) from exc
        for expected, ref in rules.references(record, keys):
            target = self.find(ref.entity, ref.id)
            if (
                ref.entity is not expected
                or ref.side not in (None, self.side)
                or target is None
                or target.deleted
            ):
                raise RecordRejectedError(
                    f"{entity} references {ref.entity} {ref.id} ({ref.side or 'unsided'}),"
                    f" which is not a live {expected} on the {self.side} side",
                    code="invalid_reference",
                )
        return rules.localize(record, self.side)

    def _commit(
        self, entity: EntityType, external_id: str, record: Record, voided: bool = False
    ) -> StoredRecord:
        if self.computes_totals and isinstance(record, Invoice):
            record = self._with_totals(external_id, record, voided)
        stored = self.find(entity, external_id)
        paid_before: set[str] = set()
        if stored is None:
            stored = StoredRecord(record=record, seq=0, at=self.clock.now(), voided=voided)
            self._records[(entity, external_id)] = stored
            self._log_change(entity, external_id)
        else:
            if isinstance(stored.record, Payment):
                paid_before = rules.invoices_paid_by(stored.record)
            stored.record = record
            stored.voided = stored.voided or voided
            self._touch(entity, external_id, stored)
        if self.computes_totals and isinstance(record, Payment):
            self._rebalance(paid_before | rules.invoices_paid_by(record))
        return stored

    def _touch(self, entity: EntityType, external_id: str, stored: StoredRecord) -> None:
        stored.seq += 1
        stored.at = self.clock.now()
        self._log_change(entity, external_id)

    def _log_change(self, entity: EntityType, external_id: str) -> None:
        change = LoggedChange(counter=self.counter + 1, entity=entity, external_id=external_id)
        self._log.append(change)
        log.debug("fake %s change %d: %s %s", self.side, change.counter, entity, external_id)

    def _with_totals(self, invoice_id: str, invoice: Invoice, voided: bool) -> Invoice:
        if voided:
            return invoice.model_copy(update={"total": rules.ZERO, "balance": rules.ZERO})
        total = rules.invoice_total(invoice)
        applied = sum(
            (
                rules.applied_to(stored.record, invoice_id)
                for stored in self._live_records(EntityType.PAYMENT)
                if isinstance(stored.record, Payment)
            ),
            rules.ZERO,
        )
        return invoice.model_copy(update={"total": total, "balance": total - applied})

    def _rebalance(self, invoice_ids: Collection[str]) -> None:
        """Recompute the balance of each invoice a payment touched; a changed balance is a new version."""
        for invoice_id in sorted(invoice_ids, key=lambda i: (len(i), i)):
            stored = self.find(EntityType.INVOICE, invoice_id)
            if stored is None or stored.deleted or not isinstance(stored.record, Invoice):
                continue
            fresh = self._with_totals(invoice_id, stored.record, stored.voided)
            if fresh != stored.record:
                stored.record = fresh
                self._touch(EntityType.INVOICE, invoice_id, stored)

    def _live_records(self, entity: EntityType) -> list[StoredRecord]:
        return [stored for key, stored in self._records.items() if key[0] is entity and not stored.deleted]
