"""Item: QuickBooks JSON <-> canonical fields (Service and NonInventory items only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.quickbooks.mapping.context import MappingContext
from connectors.quickbooks.mapping.names import ITEM_NAME_MAX, checked_name
from connectors.quickbooks.mapping.values import JsonDict, money, number, obj, ref_out, text
from engine.errors import RecordRejectedError
from engine.model import ItemType

TYPES_IN = {"Service": ItemType.SERVICE, "NonInventory": ItemType.NON_INVENTORY}
TYPES_OUT = {canonical: qbo for qbo, canonical in TYPES_IN.items()}
#: The code on the RecordRejectedError for Inventory, Group and Category items (they have no canonical form).
UNSUPPORTED_TYPE = "ledgersync.unsupported_item_type"


def to_canonical(qbo: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any]:
    name = text(qbo.get("Name")) or ""
    qbo_type = text(qbo.get("Type"))
    item_type = TYPES_IN.get(qbo_type or "")
    if item_type is None:
        # Rejected, not skipped: a silently skipped item would leave invoices that use it waiting forever;
        # a parked record shows up in `ledgersync status` with this reason.
        raise RecordRejectedError(
            f"item {name!r}: QuickBooks item type {qbo_type!r} is not synced (only Service and NonInventory)",
            code=UNSUPPORTED_TYPE,
        )
    return {
        "name": name,
        "type": item_type,
        "description": text(qbo.get("Description")),
        "unit_price": money(qbo.get("UnitPrice"), "UnitPrice"),
        "income_account": text(obj(qbo.get("IncomeAccountRef")).get("value")),
        "taxable": qbo.get("Taxable") is True,
        "active": qbo.get("Active") is not False,
    }


def to_qbo(fields: Mapping[str, Any], ctx: MappingContext, *, create: bool) -> JsonDict:
    what = f"item {fields['name']!r}" if "name" in fields else "item"
    body: JsonDict = {}
    if "name" in fields:
        body["Name"] = checked_name(fields["name"], what=what, element="Name", max_length=ITEM_NAME_MAX)
    if "type" in fields:
        body["Type"] = TYPES_OUT[ItemType(fields["type"])]
    if "description" in fields:
        if fields["description"] is not None:
            body["Description"] = fields["description"]
        elif not create:
            body["Description"] = ""
    if "unit_price" in fields:
        if fields["unit_price"] is not None:
            body["UnitPrice"] = number(fields["unit_price"], f"{what} UnitPrice")
        elif not create:
            body["UnitPrice"] = 0  # QuickBooks' own "no price"; it cannot hold a null price
    if "income_account" in fields or create:
        account = fields.get("income_account") or ctx.income_account
        if account is not None:
            body["IncomeAccountRef"] = ref_out(account)
        elif create and ItemType(fields["type"]) is ItemType.SERVICE:
            raise RecordRejectedError(
                f"{what}: QuickBooks requires an income account for Service items; "
                "set quickbooks.defaults.income_account or map income_account",
                code="ledgersync.required",
            )
        # An update that clears the account with no default leaves QuickBooks' account as it is.
    if "taxable" in fields:
        body["Taxable"] = bool(fields["taxable"])
    if "active" in fields:
        body["Active"] = bool(fields["active"])
    return body
