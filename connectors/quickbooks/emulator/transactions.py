"""Business rules of transactions: Invoice (lines, totals, numbering) and Payment (applying to invoices)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from connectors.quickbooks.emulator import currencies, faults, profile, tax
from connectors.quickbooks.emulator.context import (
    Context,
    as_number,
    blank,
    bump,
    money,
    ref_value,
    resolve_ref,
)
from connectors.quickbooks.emulator.store import JsonDict

UNDEPOSITED_FUNDS_ID = "4"
LINE_TYPES = ("SalesItemLineDetail", "DescriptionOnly", "SubTotalLineDetail", "DiscountLineDetail")
#: Days to DueDate when the invoice names no terms.
DEFAULT_DUE_DAYS = 30
COMPUTED = {
    "Invoice": ("TotalAmt", "Balance", "HomeTotalAmt", "HomeBalance", "LinkedTxn"),
    "Payment": ("UnappliedAmt",),
}


def prepare(
    ctx: Context, entity: str, data: JsonDict, existing: JsonDict | None, own_id: str | None
) -> JsonDict:
    if entity == "Invoice":
        return _invoice(ctx, data, existing, own_id)
    return _payment(ctx, data, own_id)


def _date(ctx: Context, data: JsonDict, element: str, default: date) -> date:
    value = data.get(element)
    if blank(value):
        return default
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise faults.invalid_property(
            f"Property Name:{element} specified is unsupported or invalid"
        ) from None


def _invoice(ctx: Context, data: JsonDict, existing: JsonDict | None, own_id: str | None) -> JsonDict:
    customer = resolve_ref(ctx, "Customer", data.get("CustomerRef"), "CustomerRef")
    if customer is None:
        raise faults.required("CustomerRef")
    data["CustomerRef"] = customer
    customer_row = ctx.store.get("Customer", customer["value"])
    lines = data.get("Line")
    if not isinstance(lines, list) or not [ln for ln in lines if _detail_type(ln) != "SubTotalLineDetail"]:
        raise faults.required("Line")
    rate = currencies.transaction_currency(ctx, data, customer_row.data if customer_row else None)
    old_ids = {str(ln.get("Id")) for ln in (existing or {}).get("Line", []) if ln.get("Id")}
    data["Line"], totals = _sales_lines(ctx, data, lines, old_ids)
    data["TotalAmt"] = as_number(totals.total)
    data["TxnTaxDetail"] = totals.detail
    doc_number = data.get("DocNumber")
    if blank(doc_number):
        doc_number = str(ctx.store.next_number("DocNumber", 1001))
    if len(str(doc_number)) > 21:
        raise faults.QboFaultError(
            "2050",
            "String length is either shorter or longer than supported by specification",
            f"String length specified does not match the supported length. Min:0 Max:21 supported. "
            f"Supplied length:{len(str(doc_number))}",
            element="DocNumber",
        )
    data["DocNumber"] = str(doc_number)
    txn_date = _date(ctx, data, "TxnDate", ctx.clock.today())
    data["TxnDate"] = txn_date.isoformat()
    data["DueDate"] = _date(
        ctx, data, "DueDate", txn_date + timedelta(days=_term_days(ctx, data))
    ).isoformat()
    for key, default in (
        ("EmailStatus", "NotSet"),
        ("PrintStatus", "NotSet"),
        ("ApplyTaxAfterDiscount", False),
    ):
        if blank(data.get(key)):
            data[key] = default
    data["Deposit"] = as_number(money(data.get("Deposit") or 0, "Deposit"))
    for addr in ("BillAddr", "ShipAddr"):
        if not isinstance(data.get(addr), dict) and customer_row and customer_row.data.get(addr):
            data[addr] = dict(customer_row.data[addr])
    applied, links = _payments_for(ctx, own_id)
    data["Balance"] = as_number(totals.total - applied)
    data["LinkedTxn"] = links
    if profile.multicurrency(ctx):
        data["HomeTotalAmt"] = currencies.home_amount(totals.total, rate)
        data["HomeBalance"] = currencies.home_amount(totals.total - applied, rate)
    return data


def _term_days(ctx: Context, data: JsonDict) -> int:
    """Days from TxnDate to DueDate: the SalesTermRef's (checked to exist), else 30."""
    term = resolve_ref(ctx, "Term", data.get("SalesTermRef"), "SalesTermRef")
    if term is None:
        return DEFAULT_DUE_DAYS
    data["SalesTermRef"] = term
    row = ctx.store.get("Term", term["value"])
    return int(row.data.get("DueDays") or 0) if row else DEFAULT_DUE_DAYS


def _dict(value: Any) -> JsonDict:
    return value if isinstance(value, dict) else {}


def _detail_type(line: Any) -> str | None:
    return line.get("DetailType") if isinstance(line, dict) else None


def _sales_lines(
    ctx: Context, data: JsonDict, lines: list[Any], old_ids: set[str]
) -> tuple[list[JsonDict], tax.Totals]:
    """The invoice's lines as QuickBooks returns them, and its totals.

    Item and description lines keep the order sent; then come the subtotal QuickBooks computes, the
    discount line (if any) and the shipping line (if any), each recomputed.
    """
    out: list[JsonDict] = []
    priced: list[tax.Priced] = []
    discounts: list[JsonDict] = []
    shipping: list[JsonDict] = []
    numeric_ids = [int(i) for i in old_ids if i.isdigit()]
    next_id = max(numeric_ids, default=0) + 1
    for raw in lines:
        if not isinstance(raw, dict):
            raise faults.invalid_property("Property Name:Line specified is unsupported or invalid")
        detail_type = raw.get("DetailType")
        if blank(detail_type):
            raise faults.required(
                "DetailType", "Required parameter Line.DetailType is missing in the request"
            )
        if detail_type not in LINE_TYPES:
            raise faults.invalid_enum(str(detail_type))
        if detail_type == "SubTotalLineDetail":
            continue  # QuickBooks recomputes the subtotal line
        line = {k: v for k, v in raw.items() if k not in ("LineNum", "LinkedTxn", "CustomField")}
        line_id = str(raw.get("Id", "")).strip()
        if not (line_id.isdigit() and int(line_id) > 0 and line_id in old_ids):
            line_id = str(next_id)
            next_id += 1
        line["Id"] = line_id
        if detail_type == "DiscountLineDetail":
            discounts.append(line)
            continue
        priced_line = _priced(ctx, raw, line, detail_type)
        if priced_line is None:
            out.append(line)
            continue
        priced.append(priced_line)
        (shipping if priced_line.shipping else out).append(line)
    if len(discounts) > 1:
        raise faults.business("An invoice can have only one discount line.")
    subtotal = sum((p.amount for p in priced if not p.shipping), Decimal("0.00"))
    discount = tax.discount_of(discounts[0], subtotal) if discounts else Decimal("0.00")
    totals = tax.compute(ctx, data, priced, discount)
    out.append({"DetailType": "SubTotalLineDetail", "Amount": as_number(subtotal), "SubTotalLineDetail": {}})
    for line in discounts:
        line["Amount"] = as_number(discount)
    out.extend(discounts + shipping)
    for number, line in enumerate(out, start=1):
        if line["DetailType"] != "SubTotalLineDetail":
            line["LineNum"] = number
    return out, totals


def _priced(ctx: Context, raw: JsonDict, line: JsonDict, detail_type: str) -> tax.Priced | None:
    """Fill a sales line (an item's, or shipping) as QuickBooks returns it and price it; a line without
    an item becomes description-only (None: it has no amount)."""
    detail = _dict(raw.get("SalesItemLineDetail"))
    is_shipping = ref_value(detail.get("ItemRef"), "ItemRef") == tax.SHIPPING_ITEM_ID
    if is_shipping:
        item: JsonDict | None = {"value": tax.SHIPPING_ITEM_ID, "name": "Shipping"}
    elif detail_type != "DescriptionOnly":
        item = resolve_ref(ctx, "Item", detail.get("ItemRef"), "ItemRef")
    else:
        item = None
    if item is None:
        line["DetailType"] = "DescriptionOnly"
        line["DescriptionLineDetail"] = {}
        line.pop("SalesItemLineDetail", None)
        line.pop("Amount", None)
        return None
    if blank(raw.get("Amount")):
        raise faults.required("Amount", "Required parameter Line.Amount is missing in the request")
    amount = money(raw["Amount"], "Amount")
    tax_code = tax.check_line_code(ctx, ref_value(detail.get("TaxCodeRef"), "TaxCodeRef"))
    new_detail = {k: v for k, v in detail.items() if not blank(v) and k != "TaxCodeRef"}
    new_detail["ItemRef"] = item
    if tax_code is not None:
        new_detail["TaxCodeRef"] = {"value": tax_code}
    item_row = None if is_shipping else ctx.store.get("Item", item["value"])
    if item_row and item_row.data.get("IncomeAccountRef"):
        new_detail["ItemAccountRef"] = dict(item_row.data["IncomeAccountRef"])
    line.update(Amount=as_number(amount), SalesItemLineDetail=new_detail)
    return tax.Priced(amount, tax_code, shipping=is_shipping)


def _payments_for(ctx: Context, invoice_id: str | None) -> tuple[Decimal, list[JsonDict]]:
    """How much of an invoice is paid, and the payments that pay it (as LinkedTxn entries)."""
    applied = Decimal("0.00")
    links: list[JsonDict] = []
    if invoice_id is None:
        return applied, links
    for row in ctx.store.indexed("Payment", "paid invoices", _paid_invoices, invoice_id):
        applied += applied_amounts(row.data)[invoice_id]
        links.append({"TxnId": str(row.data["Id"]), "TxnType": "Payment"})
    return applied, links


def _paid_invoices(payment: JsonDict) -> list[str]:
    return list(applied_amounts(payment))


def applied_amounts(payment: JsonDict) -> dict[str, Decimal]:
    """Invoice id -> amount this payment applies to it."""
    out: dict[str, Decimal] = {}
    for line in payment.get("Line") or []:
        for linked in line.get("LinkedTxn") or []:
            if linked.get("TxnType") == "Invoice":
                key = str(linked.get("TxnId"))
                out[key] = out.get(key, Decimal("0.00")) + money(line.get("Amount") or 0, "Amount")
    return out


def _payment(ctx: Context, data: JsonDict, own_id: str | None) -> JsonDict:
    customer = resolve_ref(ctx, "Customer", data.get("CustomerRef"), "CustomerRef")
    if customer is None:
        raise faults.required("CustomerRef")
    data["CustomerRef"] = customer
    customer_row = ctx.store.get("Customer", customer["value"])
    currencies.transaction_currency(ctx, data, customer_row.data if customer_row else None)
    if blank(data.get("TotalAmt")):
        raise faults.business("You must set a transaction amount.")
    total = money(data["TotalAmt"], "TotalAmt")
    own = ctx.store.get("Payment", own_id) if own_id else None
    previously = applied_amounts(own.data) if own else {}
    lines: list[JsonDict] = []
    applied_total = Decimal("0.00")
    for raw in data.get("Line") or []:
        if not isinstance(raw, dict) or blank(raw.get("Amount")):
            raise faults.required("Amount", "Required parameter Line.Amount is missing in the request")
        amount = money(raw["Amount"], "Amount")
        currency = data["CurrencyRef"]["value"]
        linked = [_link(ctx, link, amount, previously, currency) for link in raw.get("LinkedTxn") or []]
        lines.append(
            {
                **{k: v for k, v in raw.items() if k != "LineEx"},
                "Amount": as_number(amount),
                "LinkedTxn": linked,
            }
        )
        applied_total += amount
    if applied_total > total:
        raise faults.business("The amount applied to transactions is greater than the payment amount.")
    data["Line"] = lines
    data["TotalAmt"] = as_number(total)
    data["UnappliedAmt"] = as_number(total - applied_total)
    deposit = data.get("DepositToAccountRef") or {"value": UNDEPOSITED_FUNDS_ID}
    data["DepositToAccountRef"] = resolve_ref(ctx, "Account", deposit, "DepositToAccountRef")
    data["TxnDate"] = _date(ctx, data, "TxnDate", ctx.clock.today()).isoformat()
    data.setdefault("ProcessPayment", False)
    return data


def _link(
    ctx: Context, link: Any, amount: Decimal, previously: dict[str, Decimal], currency: str
) -> JsonDict:
    if not isinstance(link, dict) or blank(link.get("TxnId")) or blank(link.get("TxnType")):
        raise faults.required(
            "LinkedTxn", "Required parameter Line.LinkedTxn.TxnId is missing in the request"
        )
    txn_id, txn_type = str(link["TxnId"]), str(link["TxnType"])
    if txn_type != "Invoice":
        raise faults.QboFaultError(
            "620", "Txn ID can't be linked", f"Transaction type {txn_type} cannot be linked here"
        )
    invoice = ctx.store.get("Invoice", txn_id)
    if invoice is None:
        if ctx.store.is_deleted("Invoice", txn_id):
            raise faults.not_found(deleted=True)
        raise faults.invalid_reference("Invoice", txn_id)
    if ref_value(invoice.data.get("CurrencyRef"), "CurrencyRef") not in (None, currency):
        raise faults.business(f"Invoice {txn_id} is not in the payment's currency {currency}.")
    open_balance = money(invoice.data.get("Balance", 0), "Balance") + previously.get(txn_id, Decimal("0.00"))
    if amount > open_balance:
        raise faults.business(
            f"The payment amount applied to invoice {txn_id} is more than its open balance."
        )
    return {"TxnId": txn_id, "TxnType": "Invoice"}


def settle_invoices(ctx: Context, invoice_ids: set[str]) -> None:
    """After a payment changed, recompute affected invoices' Balance and LinkedTxn, bumping their version."""
    for invoice_id in sorted(invoice_ids):
        row = ctx.store.rows.get("Invoice", {}).get(invoice_id)
        if row is None:
            continue
        applied, links = _payments_for(ctx, invoice_id)
        other_links = [ln for ln in row.data.get("LinkedTxn", []) if ln.get("TxnType") != "Payment"]
        balance = as_number(money(row.data.get("TotalAmt", 0), "TotalAmt") - applied)
        if balance == row.data.get("Balance") and other_links + links == row.data.get("LinkedTxn"):
            continue
        row.data["Balance"] = balance
        row.data["LinkedTxn"] = other_links + links
        if "HomeBalance" in row.data:
            rate = Decimal(str(row.data.get("ExchangeRate") or 1))
            row.data["HomeBalance"] = currencies.home_amount(Decimal(str(balance)), rate)
        bump(ctx, "Invoice", row)
