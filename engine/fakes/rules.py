"""The fake connector's record rules, as pure functions: references, allowed op kinds, totals, voids."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal
from typing import Any

from engine.errors import RecordRejectedError
from engine.model import CENT, EntityType, Invoice, Payment, Record, Ref, Side
from engine.plan import OpKind

ZERO = Decimal("0.00")
VOID_NOTE = "Voided"

#: Op kinds each entity accepts on each side. QuickBooks never deletes a name-list entity (customer,
#: item), it only makes it inactive; the app may delete anything.
_ALLOWED: Mapping[OpKind, frozenset[EntityType]] = {
    OpKind.CREATE: frozenset(EntityType),
    OpKind.UPDATE: frozenset(EntityType),
    OpKind.INACTIVATE: frozenset({EntityType.CUSTOMER, EntityType.ITEM}),
    OpKind.DELETE: frozenset({EntityType.INVOICE, EntityType.PAYMENT}),
    OpKind.VOID: frozenset({EntityType.INVOICE, EntityType.PAYMENT}),
}


def check_kind(side: Side, entity: EntityType, kind: OpKind) -> None:
    """RecordRejectedError unless `entity` accepts `kind` on `side`."""
    if kind is OpKind.DELETE and side is Side.APP:
        return
    if entity not in _ALLOWED[kind]:
        raise RecordRejectedError(f"{entity} does not support {kind} on the {side} side", code="unsupported")


def references(record: Record, keys: Collection[str] | None = None) -> Iterator[tuple[EntityType, Ref]]:
    """Each reference in the top-level fields `keys` (None: all), with the entity it must name."""

    def wanted(key: str) -> bool:
        return keys is None or key in keys

    if isinstance(record, Invoice):
        if wanted("customer"):
            yield EntityType.CUSTOMER, record.customer
        if wanted("lines"):
            yield from ((EntityType.ITEM, line.item) for line in record.lines if line.item is not None)
    elif isinstance(record, Payment):
        if wanted("customer"):
            yield EntityType.CUSTOMER, record.customer
        if wanted("applications"):
            yield from ((EntityType.INVOICE, app.invoice) for app in record.applications)


def localize(record: Record, side: Side) -> Record:
    """The record with every reference stamped as an external id on `side` (a None side means `side`)."""

    def here(ref: Ref) -> Ref:
        return ref if ref.side is side else ref.model_copy(update={"side": side})

    if isinstance(record, Invoice):
        lines = tuple(
            line if line.item is None else line.model_copy(update={"item": here(line.item)})
            for line in record.lines
        )
        return record.model_copy(update={"customer": here(record.customer), "lines": lines})
    if isinstance(record, Payment):
        apps = tuple(app.model_copy(update={"invoice": here(app.invoice)}) for app in record.applications)
        return record.model_copy(update={"customer": here(record.customer), "applications": apps})
    return record


def voided(record: Record) -> Record:
    """What a void leaves of an invoice or payment: every amount zero (an invoice also notes why)."""
    if isinstance(record, Invoice):
        lines = tuple(line.model_copy(update={"amount": ZERO}) for line in record.lines)
        return record.model_copy(
            update={"lines": lines, "total": ZERO, "balance": ZERO, "private_note": VOID_NOTE}
        )
    if isinstance(record, Payment):
        apps = tuple(app.model_copy(update={"amount": ZERO}) for app in record.applications)
        return record.model_copy(update={"total": ZERO, "applications": apps})
    raise RecordRejectedError(f"a {type(record).__name__.lower()} cannot be voided", code="unsupported")


def invoice_total(invoice: Invoice) -> Decimal:
    return sum((line.amount for line in invoice.lines), ZERO).quantize(CENT)


def applied_to(payment: Payment, invoice_id: str) -> Decimal:
    """How much of `payment` is applied to the invoice `invoice_id` (references already localized)."""
    return sum((app.amount for app in payment.applications if app.invoice.id == invoice_id), ZERO)


def invoices_paid_by(payment: Payment) -> set[str]:
    return {app.invoice.id for app in payment.applications}


def without(fields: Mapping[str, Any], dropped: Collection[str]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if key not in dropped}
