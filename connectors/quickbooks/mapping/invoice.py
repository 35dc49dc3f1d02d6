"""Invoice: QuickBooks JSON <-> canonical fields, with the sales lines QuickBooks requires.

Item lines (SalesItemLineDetail) and description-only lines are `lines`; the one discount line
(DiscountLineDetail) is `discount_percent` / `discount`, the shipping line (ItemRef SHIPPING_ITEM_ID) is
`shipping`; the subtotal line QuickBooks computes is ignored on read and never sent. TotalAmt, Balance,
TxnTaxDetail.TotalTax and HomeTotalAmt are read (`total`, `balance`, `tax_total`, `home_total`) and never
written, so the app's own tax figure never reaches QuickBooks; under Automated Sales Tax the invoice's tax
code is neither sent nor read (QuickBooks picks it). Canonical form keeps only what is not implied: a line's
`tax_code` only when its taxable flag would not give it, `currency` and `exchange_rate` only for a foreign
currency, `tax_after_discount` only when true (QuickBooks' default is false in the US, true elsewhere).
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
DISCOUNT_LINE = "DiscountLineDetail"
SHIPPING_ITEM_ID = "SHIPPING_ITEM_ID"
ZERO = Decimal("0.00")
#: Canonical fields that live in QuickBooks' Line array.
LINE_FIELDS = frozenset({"lines", "discount", "discount_percent", "shipping"})


def to_canonical(qbo: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any]:
    lines = qbo.get("Line")
    return {
        **_extras_in(qbo, ctx),
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


def _extras_in(qbo: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any]:
    """Tax, discount, shipping, terms and currency of a QBO invoice, as canonical fields."""
    rows = [obj(raw) for raw in qbo.get("Line") or [] if isinstance(qbo.get("Line"), list)]
    discount = next((row for row in rows if row.get("DetailType") == DISCOUNT_LINE), None)
    detail = obj(discount.get(DISCOUNT_LINE)) if discount else {}
    percent = (
        decimal_of(detail.get("DiscountPercent"), "DiscountPercent") if detail.get("PercentBased") else None
    )
    shipping = [row for row in rows if _is_shipping(row)]
    currency = text(obj(qbo.get("CurrencyRef")).get("value"))
    foreign = currency is not None and currency != ctx.home_currency
    tax = obj(qbo.get("TxnTaxDetail"))
    us = ctx.tax_mode is TaxMode.US
    return {
        "tax_code": None
        if ctx.automated_sales_tax or not us
        else text(obj(tax.get("TxnTaxCodeRef")).get("value")),
        "terms": text(obj(qbo.get("SalesTermRef")).get("value")),
        "discount_percent": None if percent is None else percent.normalize(),
        # A discount of nothing is no discount (it is never sent as a line).
        "discount": (money(discount.get("Amount"), "Discount.Amount") or None) if discount else None,
        "tax_after_discount": True if us and qbo.get("ApplyTaxAfterDiscount") is True else None,
        "shipping": sum((money(row.get("Amount"), "Shipping.Amount") or ZERO for row in shipping), ZERO)
        if shipping
        else None,
        "currency": currency if foreign else None,
        "exchange_rate": decimal_of(qbo.get("ExchangeRate"), "ExchangeRate") if foreign else None,
        "tax_total": money(tax.get("TotalTax"), "TxnTaxDetail.TotalTax"),
        "home_total": money(qbo.get("HomeTotalAmt"), "HomeTotalAmt") if foreign else None,
    }


def _is_shipping(line: Mapping[str, Any]) -> bool:
    if line.get("DetailType") != SALES_LINE:
        return False
    return text(obj(obj(line.get(SALES_LINE)).get("ItemRef")).get("value")) == SHIPPING_ITEM_ID


def _line_in(line: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any] | None:
    detail_type = line.get("DetailType")
    if detail_type == DESCRIPTION_LINE:
        # QuickBooks ignores the amount of a line without an item: it is text on the invoice.
        return {"item": None, "description": text(line.get("Description")), "amount": ZERO}
    if detail_type != SALES_LINE or _is_shipping(line):
        return None
    detail = obj(line.get(SALES_LINE))
    item = ref_in(EntityType.ITEM, detail.get("ItemRef"))
    if item is not None and item["id"] == ctx.default_item:
        item = None  # the configured stand-in for "no item" reads back as no item
    quantity = decimal_of(detail.get("Qty"), "Line.Qty")
    code = text(obj(detail.get("TaxCodeRef")).get("value"))
    return {
        "tax_code": None if ctx.default_code(code) else code,
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
    if LINE_FIELDS & fields.keys() or create:
        if "lines" not in fields:
            raise RecordRejectedError(
                f"{what}: a discount or shipping change needs the invoice's lines (QuickBooks replaces "
                "them all at once), and they are held in a conflict",
                code="ledgersync.required",
            )
        # Line arrays are all-or-nothing, even in a sparse update: every line is always sent.
        body["Line"] = [_line_out(line, ctx, f"{what} line {n}") for n, line in enumerate(fields["lines"], 1)]
        if not body["Line"]:
            raise RecordRejectedError(
                f"{what}: QuickBooks requires at least one line", code="ledgersync.required"
            )
        body["Line"] += _discount_and_shipping_out(fields, ctx, what)
        if ctx.tax_mode is TaxMode.GLOBAL:
            body["GlobalTaxCalculation"] = ctx.global_tax_calculation
    _extras_out(body, fields, ctx, what, create=create)
    if "private_note" in fields:
        if fields["private_note"] is not None:
            body["PrivateNote"] = fields["private_note"]
        elif not create:
            body["PrivateNote"] = ""
    return body


def _discount_and_shipping_out(fields: Mapping[str, Any], ctx: MappingContext, what: str) -> list[JsonDict]:
    out: list[JsonDict] = []
    percent, amount = fields.get("discount_percent"), fields.get("discount")
    if percent is not None:
        detail = {"PercentBased": True, "DiscountPercent": number(percent, f"{what} discount percent")}
        out.append({"DetailType": DISCOUNT_LINE, "Amount": 0, DISCOUNT_LINE: detail})
    elif amount:
        detail = {"PercentBased": False}
        out.append(
            {"DetailType": DISCOUNT_LINE, "Amount": number(amount, f"{what} discount"), DISCOUNT_LINE: detail}
        )
    if fields.get("shipping"):
        shipping_detail = {
            "ItemRef": ref_out(SHIPPING_ITEM_ID),
            "TaxCodeRef": ref_out(ctx.line_tax_code(False)),
        }
        out.append(
            {
                "DetailType": SALES_LINE,
                "Amount": number(fields["shipping"], f"{what} shipping"),
                SALES_LINE: shipping_detail,
            }
        )
    return out


def _extras_out(
    body: JsonDict, fields: Mapping[str, Any], ctx: MappingContext, what: str, *, create: bool
) -> None:
    """Tax code, terms, currency and the discount's tax order; a code or currency QuickBooks lacks is
    rejected here, before anything is sent."""
    if fields.get("tax_code") is not None:
        code = ctx.check_tax_code(fields["tax_code"], f"{what} tax code")
        if not ctx.automated_sales_tax and ctx.tax_mode is TaxMode.US:
            # Under Automated Sales Tax QuickBooks picks the rate group itself; elsewhere lines carry codes.
            body["TxnTaxDetail"] = {"TxnTaxCodeRef": ref_out(code)}
    if fields.get("terms") is not None:
        body["SalesTermRef"] = ref_out(fields["terms"])
    if fields.get("currency") is not None:
        body["CurrencyRef"] = ref_out(ctx.check_currency(fields["currency"], what))
        if fields.get("exchange_rate") is not None:
            body["ExchangeRate"] = number(fields["exchange_rate"], f"{what} exchange rate")
    if fields.get("tax_after_discount") is not None:
        body["ApplyTaxAfterDiscount"] = bool(fields["tax_after_discount"])
    elif "tax_after_discount" in fields and not create:
        body["ApplyTaxAfterDiscount"] = False


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
        "TaxCodeRef": ref_out(
            ctx.check_tax_code(line["tax_code"], what, line=True)
            if line.get("tax_code")
            else ctx.line_tax_code(bool(line.get("taxable")))
        ),
    }
    if line.get("unit_price") is not None:
        detail["UnitPrice"] = number(line["unit_price"], f"{what} UnitPrice")
    out: JsonDict = {"DetailType": SALES_LINE, "Amount": number(amount, f"{what} Amount")}
    if description is not None:
        out["Description"] = description
    out[SALES_LINE] = detail
    return out
