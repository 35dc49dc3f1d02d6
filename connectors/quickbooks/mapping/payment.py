"""Payment (ReceivePayment): QuickBooks JSON <-> canonical fields, with applications to invoices.

A payment line applies `Amount` to the transactions in its LinkedTxn; only links of TxnType Invoice are
canonical (one application per line, the line's first invoice link). What is not applied stays an
unapplied credit in QuickBooks (UnappliedAmt, computed, never sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.quickbooks.mapping.context import MappingContext
from connectors.quickbooks.mapping.values import (
    JsonDict,
    customer_ref_into,
    day,
    money,
    number,
    obj,
    ref_id,
    ref_in,
    text,
)
from engine.errors import RecordRejectedError
from engine.model import EntityType

INVOICE_TXN = "Invoice"


def to_canonical(qbo: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any]:
    lines = qbo.get("Line")
    return {
        "customer": ref_in(EntityType.CUSTOMER, qbo.get("CustomerRef")),
        "txn_date": day(qbo.get("TxnDate"), "TxnDate"),
        "total": money(qbo.get("TotalAmt"), "TotalAmt"),
        "reference_number": text(qbo.get("PaymentRefNum")),
        "applications": tuple(
            application
            for raw in (lines if isinstance(lines, list) else [])
            if (application := _application_in(obj(raw))) is not None
        ),
    }


def _application_in(line: Mapping[str, Any]) -> dict[str, Any] | None:
    links = line.get("LinkedTxn")
    for link in links if isinstance(links, list) else []:
        if obj(link).get("TxnType") == INVOICE_TXN and (invoice := text(obj(link).get("TxnId"))):
            amount = money(line.get("Amount"), "Line.Amount")
            return {"invoice": ref_in(EntityType.INVOICE, {"value": invoice}), "amount": amount}
    return None


def to_qbo(fields: Mapping[str, Any], ctx: MappingContext, *, create: bool) -> JsonDict:
    what = f"payment {fields['reference_number']!r}" if fields.get("reference_number") else "payment"
    body: JsonDict = {}
    customer_ref_into(body, fields, what, create=create)
    if fields.get("txn_date") is not None:
        body["TxnDate"] = fields["txn_date"].isoformat()
    if "total" in fields or create:
        if fields.get("total") is None:
            raise RecordRejectedError(f"{what}: QuickBooks requires TotalAmt", code="ledgersync.required")
        body["TotalAmt"] = number(fields["total"], f"{what} TotalAmt")
    if "reference_number" in fields:
        if fields["reference_number"] is not None:
            body["PaymentRefNum"] = fields["reference_number"]
        elif not create:
            body["PaymentRefNum"] = ""
    if "applications" in fields or create:
        # All-or-nothing like invoice lines: every application is sent whenever one changes.
        body["Line"] = [
            {
                "Amount": number(app["amount"], f"{what} applied amount"),
                "LinkedTxn": [
                    {
                        "TxnId": ref_id(app["invoice"], EntityType.INVOICE, f"{what} invoice"),
                        "TxnType": INVOICE_TXN,
                    }
                ],
            }
            for app in fields.get("applications", ())
        ]
    return body
