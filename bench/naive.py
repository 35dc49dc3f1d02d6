"""The naive loop the backfill is compared with: python-quickbooks, unmodified, one save() per record.

Run as a child process (`python -m bench.naive SPEC_JSON`) so its CPU is its own. It reads the app's
rows itself and creates customers, items, invoices and payments in that order, each with one `save()`,
as a first script against QuickBooks would. The only concessions: python-quickbooks hard-codes its API
host, so a subclass points `api_url_v3` at the emulator (tests/emulator/test_emulator_third_party.py
does the same), and on a 429 (ThrottleExceeded) it waits one QuickBooks minute and tries again, as
Intuit's documentation says to. Prints one JSON line: records created, 429s met, failures.
"""

from __future__ import annotations

import json
import os
import sys
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

REDIRECT = "http://localhost:8000/callback"


def _client(spec: dict[str, Any]) -> Any:
    import requests
    from intuitlib.client import AuthClient
    from intuitlib.enums import Scopes
    from quickbooks import QuickBooks

    auth = AuthClient(spec["client_id"], spec["client_secret"], REDIRECT, spec["discovery_url"])
    with requests.Session() as browser:
        answer = browser.get(auth.get_authorization_url([Scopes.ACCOUNTING]), allow_redirects=False)
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    auth.get_bearer_token(query["code"][0], realm_id=query["realmId"][0])
    emulated = type("EmulatedQuickBooks", (QuickBooks,), {"api_url_v3": spec["api_base"]})
    return emulated(
        auth_client=auth, refresh_token=auth.refresh_token, company_id=query["realmId"][0], minorversion=75
    )


class Loop:
    def __init__(self, qb: Any, minute_seconds: float) -> None:
        self.qb = qb
        self.minute = minute_seconds
        self.created = 0
        self.throttled = 0
        self.failed: list[str] = []

    def save(self, obj: Any, what: str) -> Any:
        from quickbooks.exceptions import QuickbooksException

        for _ in range(20):
            try:
                saved = obj.save(qb=self.qb)
            except QuickbooksException as error:
                if "ThrottleExceeded" in str(error.message):
                    self.throttled += 1
                    time.sleep(self.minute)
                    continue
                self.failed.append(f"{what}: {error.message} {error.detail}")
                return None
            self.created += 1
            return saved
        self.failed.append(f"{what}: still throttled after 20 tries")
        return None


def copy_all(qb: Any, rows: dict[str, list[dict[str, Any]]], minute_seconds: float) -> Loop:
    """Create every app record in QuickBooks, parents first, one save() each."""
    from quickbooks.objects.account import Account

    loop = Loop(qb, minute_seconds)
    income = Account.where("AccountType = 'Income'", qb=qb)[0].to_ref()
    customers = _customers(loop, rows["customers"])
    items = _items(loop, rows["items"], income)
    invoices = _invoices(loop, rows["invoices"], rows["invoice_lines"], customers, items)
    _payments(loop, rows["payments"], rows["payment_applications"], customers, invoices)
    return loop


def _customers(loop: Loop, rows: list[dict[str, Any]]) -> dict[int, Any]:
    from quickbooks.objects.customer import Customer

    refs = {}
    for row in rows:
        customer = Customer()
        customer.DisplayName = row["display_name"]
        customer.GivenName, customer.FamilyName = row["first_name"], row["last_name"]
        customer.PrimaryEmailAddr = {"Address": row["email"]}
        customer.PrimaryPhone = {"FreeFormNumber": row["phone"]}
        if (saved := loop.save(customer, f"customer {row['id']}")) is not None:
            refs[row["id"]] = saved.to_ref()
    return refs


def _items(loop: Loop, rows: list[dict[str, Any]], income: Any) -> dict[int, Any]:
    from quickbooks.objects.item import Item

    refs = {}
    for row in rows:
        item = Item()
        item.Name = row["name"]
        item.Type = "Service" if row["kind"] == "service" else "NonInventory"
        item.UnitPrice = _number(row["price"])
        item.IncomeAccountRef = income
        if (saved := loop.save(item, f"item {row['id']}")) is not None:
            refs[row["id"]] = saved.to_ref()
    return refs


def _invoices(
    loop: Loop,
    rows: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    customers: dict[int, Any],
    items: dict[int, Any],
) -> dict[int, Any]:
    from quickbooks.objects.base import Ref
    from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
    from quickbooks.objects.invoice import Invoice

    lines_of: dict[int, list[dict[str, Any]]] = {}
    for line in lines:
        lines_of.setdefault(line["invoice_id"], []).append(line)
    saved_invoices = {}
    for row in rows:
        invoice = Invoice()
        invoice.CustomerRef = customers.get(row["customer_id"], Ref())
        invoice.DocNumber = row["number"]
        for line in lines_of.get(row["id"], []):
            sales = SalesItemLine()
            sales.Amount = _number(line["amount"])
            sales.Description = line["description"]
            sales.SalesItemLineDetail = SalesItemLineDetail()
            sales.SalesItemLineDetail.ItemRef = items.get(line["item_id"])
            sales.SalesItemLineDetail.Qty = _number(line["quantity"])
            sales.SalesItemLineDetail.UnitPrice = _number(line["unit_price"])
            invoice.Line.append(sales)
        if (saved := loop.save(invoice, f"invoice {row['id']}")) is not None:
            saved_invoices[row["id"]] = saved
    return saved_invoices


def _payments(
    loop: Loop,
    rows: list[dict[str, Any]],
    applications: list[dict[str, Any]],
    customers: dict[int, Any],
    invoices: dict[int, Any],
) -> None:
    from quickbooks.objects.base import LinkedTxn, Ref
    from quickbooks.objects.payment import Payment, PaymentLine

    applied_to: dict[int, list[dict[str, Any]]] = {}
    for application in applications:
        applied_to.setdefault(application["payment_id"], []).append(application)
    for row in rows:
        payment = Payment()
        payment.TotalAmt = _number(row["amount"])
        payment.CustomerRef = customers.get(row["customer_id"], Ref())
        for application in applied_to.get(row["id"], []):
            if application["invoice_id"] not in invoices:
                continue
            line = PaymentLine()
            line.Amount = _number(application["amount"])
            linked = LinkedTxn()
            linked.TxnId = invoices[application["invoice_id"]].Id
            linked.TxnType = "Invoice"
            line.LinkedTxn.append(linked)
            payment.Line.append(line)
        loop.save(payment, f"payment {row['id']}")


def _number(value: Any) -> float:
    """python-quickbooks sends floats; the app keeps exact decimals (or their text, on SQLite)."""
    return float(Decimal(str(value)))


def main() -> None:
    from bench.appdata import read_mix

    spec = json.loads(sys.argv[1])
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the emulator speaks plain http
    rows = read_mix(spec["app_url"])
    qb = _client(spec)
    try:
        loop = copy_all(qb, rows, spec["minute_seconds"])
    finally:
        qb.session.close()
    print(json.dumps({"created": loop.created, "throttled": loop.throttled, "failed": loop.failed[:20]}))


if __name__ == "__main__":
    main()
