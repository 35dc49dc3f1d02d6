"""Business rules of transactions: Invoice (lines, totals, numbering) and Payment (applying to invoices)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from connectors.quickbooks.emulator import faults
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
US_TAX_CODES = ("TAX", "NON")
LINE_TYPES = ("SalesItemLineDetail", "DescriptionOnly", "SubTotalLineDetail")
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
    lines = data.get("Line")
    if not isinstance(lines, list) or not [ln for ln in lines if _detail_type(ln) != "SubTotalLineDetail"]:
        raise faults.required("Line")
    old_ids = {str(ln.get("Id")) for ln in (existing or {}).get("Line", []) if ln.get("Id")}
    data["Line"], total = _sales_lines(ctx, lines, old_ids)
    data["TotalAmt"] = as_number(total)
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
    data["DueDate"] = _date(ctx, data, "DueDate", txn_date + timedelta(days=30)).isoformat()
    tax = _dict(data.get("TxnTaxDetail"))
    data["TxnTaxDetail"] = {
        **({"TxnTaxCodeRef": tax["TxnTaxCodeRef"]} if tax.get("TxnTaxCodeRef") else {}),
        "TotalTax": 0,
    }
    for key, default in (
        ("EmailStatus", "NotSet"),
        ("PrintStatus", "NotSet"),
        ("ApplyTaxAfterDiscount", False),
    ):
        if blank(data.get(key)):
            data[key] = default
    data["Deposit"] = as_number(money(data.get("Deposit") or 0, "Deposit"))
    data.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
    customer_row = ctx.store.get("Customer", customer["value"])
    for addr in ("BillAddr", "ShipAddr"):
        if not isinstance(data.get(addr), dict) and customer_row and customer_row.data.get(addr):
            data[addr] = dict(customer_row.data[addr])
    applied, links = _payments_for(ctx, own_id)
    data["Balance"] = as_number(total - applied)
    data["LinkedTxn"] = links
    return data


def _dict(value: Any) -> JsonDict:
    return value if isinstance(value, dict) else {}


def _detail_type(line: Any) -> str | None:
    return line.get("DetailType") if isinstance(line, dict) else None


def _sales_lines(ctx: Context, lines: list[Any], old_ids: set[str]) -> tuple[list[JsonDict], Decimal]:
    out: list[JsonDict] = []
    total = Decimal("0.00")
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
        line["LineNum"] = len(out) + 1
        detail = _dict(raw.get("SalesItemLineDetail"))
        item = (
            resolve_ref(ctx, "Item", detail.get("ItemRef"), "ItemRef")
            if detail_type != "DescriptionOnly"
            else None
        )
        if item is None:
            line["DetailType"] = "DescriptionOnly"
            line["DescriptionLineDetail"] = {}
            line.pop("SalesItemLineDetail", None)
            line.pop("Amount", None)
            out.append(line)
            continue
        if blank(raw.get("Amount")):
            raise faults.required("Amount", "Required parameter Line.Amount is missing in the request")
        amount = money(raw["Amount"], "Amount")
        tax_code = ref_value(detail.get("TaxCodeRef"), "TaxCodeRef") or "NON"
        if tax_code not in US_TAX_CODES:
            raise faults.QboFaultError(
                "6100", "Invalid line tax code", "Valid Line TaxCodes for US should be TAX or NON"
            )
        item_row = ctx.store.get("Item", item["value"])
        new_detail = {k: v for k, v in detail.items() if not blank(v)}
        new_detail.update(ItemRef=item, TaxCodeRef={"value": tax_code})
        if item_row and item_row.data.get("IncomeAccountRef"):
            new_detail["ItemAccountRef"] = dict(item_row.data["IncomeAccountRef"])
        line.update(Amount=as_number(amount), SalesItemLineDetail=new_detail)
        total += amount
        out.append(line)
    out.append({"DetailType": "SubTotalLineDetail", "Amount": as_number(total), "SubTotalLineDetail": {}})
    return out, total


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
        linked = [_link(ctx, link, amount, previously) for link in raw.get("LinkedTxn") or []]
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
    data.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
    return data


def _link(ctx: Context, link: Any, amount: Decimal, previously: dict[str, Decimal]) -> JsonDict:
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
        bump(ctx, "Invoice", row)
