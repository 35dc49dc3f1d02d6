"""What every rule needs at hand: the store, the clock and the settings, plus small shared helpers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from connectors.quickbooks.emulator import faults
from connectors.quickbooks.emulator.clock import EmulatorClock, format_stamp
from connectors.quickbooks.emulator.config import EmulatorConfig
from connectors.quickbooks.emulator.store import JsonDict, Row, Store

NAME_LISTS = ("Customer", "Vendor", "Employee", "Item", "Account")
PEOPLE = ("Customer", "Vendor", "Employee")
TRANSACTIONS = ("Invoice", "Payment")
#: Read and query only here (tax codes and rates are read-only in QuickBooks' entity API too; terms and
#: currencies are seeded per company, see company.py).
READ_ONLY = ("TaxCode", "TaxRate", "Term", "CompanyCurrency", "ExchangeRate", "Preferences", "CompanyInfo")
ENTITIES = (*NAME_LISTS, *TRANSACTIONS, *READ_ONLY)
#: Entities change data capture does not cover.
NOT_IN_CDC = ("TaxCode", "TaxRate", "ExchangeRate")
URL_NAMES = {name.lower(): name for name in ENTITIES}


@dataclass
class Context:
    store: Store
    clock: EmulatorClock
    config: EmulatorConfig

    def stamp(self) -> str:
        return format_stamp(self.clock.now(), self.config.tz)


def blank(value: Any) -> bool:
    """QuickBooks clients send "" and 0-ish placeholders for unset fields; treat "" and None as absent."""
    return value is None or (isinstance(value, str) and value.strip() == "")


def money(value: Any, element: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise faults.invalid_property(
            f"Property Name:{element} specified is unsupported or invalid"
        ) from None
    if not amount.is_finite():
        raise faults.invalid_property(f"Property Name:{element} specified is unsupported or invalid")
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def as_number(amount: Decimal) -> float:
    return float(amount)


def ref_value(ref: Any, element: str) -> str | None:
    """The id inside a `{"value": ..., "name": ...}` reference, or None when absent."""
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise faults.invalid_property(f"Property Name:{element} specified is unsupported or invalid")
    value = ref.get("value")
    return None if blank(value) else str(value)


def display_of(entity: str, row: Row) -> str:
    data = row.data
    if entity in PEOPLE:
        return str(data.get("DisplayName", ""))
    return str(data.get("FullyQualifiedName") or data.get("Name") or "")


def resolve_ref(ctx: Context, entity: str, ref: Any, element: str) -> JsonDict | None:
    """Check a reference points at an existing, active record; return it filled with its `name`."""
    ref_id = ref_value(ref, element)
    if ref_id is None:
        return None
    row = ctx.store.get(entity, ref_id)
    if row is None:
        raise faults.invalid_reference(entity, ref_id)
    if row.data.get("Active") is False:
        raise faults.inactive_reference()
    return {"value": ref_id, "name": display_of(entity, row)}


def bump(ctx: Context, entity: str, row: Row, operation: str = "Update") -> None:
    """Record a change QuickBooks made on its own (a payment settling an invoice): new version, new time."""
    now = ctx.clock.now()
    row.data["SyncToken"] = str(int(row.data.get("SyncToken", "0")) + 1)
    meta = dict(row.data.get("MetaData") or {})
    meta["LastUpdatedTime"] = format_stamp(now, ctx.config.tz)
    row.data["MetaData"] = meta
    row.updated_at = now
    ctx.store.put(entity, row, operation)
