"""Invoice: QuickBooks JSON <-> canonical fields, with the sales lines QuickBooks requires.

Only item lines (SalesItemLineDetail) and description-only lines are canonical; the subtotal, discount
and group lines QuickBooks adds or computes are ignored on read and never sent. TotalAmt and Balance are
read (as `total` and `balance`) and never written.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.quickbooks.mapping.context import MappingContext, TaxMode
from connectors.quickbooks.mapping.names import DOC_NUMBER_MAX, checked_length
from connectors.quickbooks.mapping.values import (
    JsonDict,
    customer_ref_into,
    day,
    decimal_of,
    money,
    number,
    obj,
    ref_id,
    ref_in,
    ref_out,
    text,
)
from engine.errors import RecordRejectedError
from engine.model import EntityType

SALES_LINE = "SalesItemLineDetail"
DESCRIPTION_LINE = "DescriptionOnly"
ZERO = Decimal("0.00")


def to_canonical(qbo: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any]:
    lines = qbo.get("Line")
    return {
        "customer": ref_in(EntityType.CUSTOMER, qbo.get("CustomerRef")),
        "doc_number": text(qbo.get("DocNumber")),
        "txn_date": day(qbo.get("TxnDate"), "TxnDate"),
        "due_date": day(qbo.get("DueDate"), "DueDate"),
        "lines": tuple(
            line
            for raw in (lines if isinstance(lines, list) else [])
            if (line := _line_in(obj(raw), ctx)) is not None
        ),
        "private_note": text(qbo.get("PrivateNote")),
        "total": money(qbo.get("TotalAmt"), "TotalAmt"),
        "balance": money(qbo.get("Balance"), "Balance"),
    }


def _line_in(line: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any] | None:
    detail_type = line.get("DetailType")
    if detail_type == DESCRIPTION_LINE:
        # QuickBooks ignores the amount of a line without an item: it is text on the invoice.
        return {"item": None, "description": text(line.get("Description")), "amount": ZERO}
    if detail_type != SALES_LINE:
        return None
    detail = obj(line.get(SALES_LINE))
    item = ref_in(EntityType.ITEM, detail.get("ItemRef"))
    if item is not None and item["id"] == ctx.default_item:
        item = None  # the configured stand-in for "no item" reads back as no item
    quantity = decimal_of(detail.get("Qty"), "Line.Qty")
    return {
        "item": item,
        "description": text(line.get("Description")),
        "quantity": Decimal(1) if quantity is None else quantity,
        "unit_price": money(detail.get("UnitPrice"), "Line.UnitPrice"),
        "amount": money(line.get("Amount"), "Line.Amount") or ZERO,
        "taxable": ctx.is_taxable_code(text(obj(detail.get("TaxCodeRef")).get("value"))),
    }


def to_qbo(fields: Mapping[str, Any], ctx: MappingContext, *, create: bool) -> JsonDict:
    what = f"invoice {fields['doc_number']!r}" if fields.get("doc_number") else "invoice"
    body: JsonDict = {}
    customer_ref_into(body, fields, what, create=create)
    if fields.get("doc_number") is not None:
        # QuickBooks numbers an invoice itself when DocNumber is absent; it cannot be cleared.
        body["DocNumber"] = checked_length(
            fields["doc_number"], what=what, element="DocNumber", max_length=DOC_NUMBER_MAX
        )
    for key, qbo_key in (("txn_date", "TxnDate"), ("due_date", "DueDate")):
        # A date cannot be cleared in QuickBooks (it defaults TxnDate to today, DueDate from terms).
        if fields.get(key) is not None:
            body[qbo_key] = fields[key].isoformat()
    if "lines" in fields or create:
        # Line arrays are all-or-nothing, even in a sparse update: every line is always sent.
        body["Line"] = [_line_out(line, ctx, f"{what} line {n}") for n, line in enumerate(fields["lines"], 1)]
        if not body["Line"]:
            raise RecordRejectedError(
                f"{what}: QuickBooks requires at least one line", code="ledgersync.required"
            )
        if ctx.tax_mode is TaxMode.GLOBAL:
            body["GlobalTaxCalculation"] = ctx.global_tax_calculation
    if "private_note" in fields:
        if fields["private_note"] is not None:
            body["PrivateNote"] = fields["private_note"]
        elif not create:
            body["PrivateNote"] = ""
    return body


def _line_out(line: Mapping[str, Any], ctx: MappingContext, what: str) -> JsonDict:
    amount: Decimal = line["amount"]
    description = line.get("description")
    item = line.get("item")
    if item is not None:
        item_id = ref_id(item, EntityType.ITEM, f"{what} item")
    elif ctx.default_item is not None:
        item_id = ctx.default_item
    elif amount == 0:
        # Text only: QuickBooks keeps no amount for a line without an item, and there is none to lose.
        return {"DetailType": DESCRIPTION_LINE, "Description": description or "", "DescriptionLineDetail": {}}
    else:
        raise RecordRejectedError(
            f"{what}: QuickBooks drops the amount of a line without an item; "
            "set quickbooks.defaults.default_item or give the line an item",
            code="ledgersync.required",
        )
    detail: JsonDict = {
        "ItemRef": ref_out(item_id),
        "Qty": number(line.get("quantity", Decimal(1)), f"{what} Qty"),
        "TaxCodeRef": ref_out(ctx.line_tax_code(bool(line.get("taxable")))),
    }
    if line.get("unit_price") is not None:
        detail["UnitPrice"] = number(line["unit_price"], f"{what} UnitPrice")
    out: JsonDict = {"DetailType": SALES_LINE, "Amount": number(amount, f"{what} Amount")}
    if description is not None:
        out["Description"] = description
    out[SALES_LINE] = detail
    return out
