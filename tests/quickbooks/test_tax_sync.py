"""Invoices as businesses issue them, synced both ways through the emulator: sales tax (US Automated Sales
Tax, UK VAT per line), discounts and shipping, a foreign currency, and a payment over three invoices.
Each side's totals, tax and balances must agree to the cent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.quickbooks.emulator.profile import CompanyProfile
from connectors.quickbooks.mapping import MappingContext
from engine.fakes import FakeConnector
from engine.model import EntityType, Side
from tests.support.tax import CONNECTION, UK, US_AST, Book, assert_agree, money
from tests.support.tax import open_book as open_any_book

C, ITEM, INV, PAY = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT


def open_book(
    stack: ExitStack, tmp_path: Path, company: CompanyProfile, mapping: MappingContext
) -> Book[FakeConnector]:
    """The app is the in-memory fake (tests/app/test_tax_sync_sql.py: the SQL connector)."""
    return open_any_book(
        stack, tmp_path, company, mapping, lambda clock: FakeConnector(Side.APP, CONNECTION, clock)
    )


def stock(book: Book[FakeConnector], currency: str | None = None) -> tuple[str, str, str]:
    """A customer (in `currency`), a taxable and a non-taxable item, created in the app."""
    customer = book.app.create(C, {"display_name": f"Buyer {currency or 'home'}", "currency": currency})
    goods = book.app.create(ITEM, {"name": "Fountain", "unit_price": "275.00", "taxable": True})
    labour = book.app.create(ITEM, {"name": "Labour", "unit_price": "50.00"})
    return customer, goods, labour


def _ref(entity: EntityType, app_id: str) -> dict[str, Any]:
    return {"entity": entity, "id": app_id}


def _line(item: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {"item": _ref(ITEM, item), "amount": amount, **extra}


@pytest.fixture
def us(tmp_path: Path) -> Iterator[Book[FakeConnector]]:
    with ExitStack() as stack:
        yield open_book(stack, tmp_path, CompanyProfile.us_automated_sales_tax(), US_AST)


def test_us_invoice_under_automated_sales_tax(us: Book[FakeConnector]) -> None:
    customer, goods, labour = stock(us)
    invoice = us.app.create(
        INV,
        {
            "customer": _ref(C, customer),
            "doc_number": "US-1",
            "lines": [_line(goods, "275.00", taxable=True), _line(labour, "60.25")],
            "tax_code": "2",
            "tax_total": "99.00",  # the app's own figure: QuickBooks computes tax, so it is never sent
        },
    )
    us.runner.run_until_quiet()
    qbo = us.in_qbo(INV, invoice)
    assert qbo["TxnTaxDetail"]["TotalTax"] == 22.0  # 8% of the 275.00 taxable line only
    app = assert_agree(us, invoice)
    assert (app["tax_total"], app["total"]) == (Decimal("22.00"), Decimal("357.25"))
    # The other way: an accountant raises an invoice in QuickBooks; its tax reaches the app.
    made = us.qbo.create_record(
        "Invoice",
        {
            "CustomerRef": {"value": us.qbo_id(C, customer)},
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": 335.25,
                    "SalesItemLineDetail": {
                        "ItemRef": {"value": us.qbo_id(ITEM, goods)},
                        "TaxCodeRef": {"value": "TAX"},
                    },
                }
            ],
        },
    )
    us.runner.run_until_quiet()
    pulled = assert_agree(us, us.app_id(INV, made["Id"]))
    assert (pulled["tax_total"], pulled["total"]) == (Decimal("26.82"), Decimal("362.07"))
    assert pulled["lines"][0]["taxable"] is True and pulled["tax_code"] is None  # QuickBooks picks it
    assert us.runner.run_until_quiet().applied == 0


def test_a_discounted_invoice_with_shipping_and_terms(us: Book[FakeConnector]) -> None:
    customer, goods, labour = stock(us)
    invoice = us.app.create(
        INV,
        {
            "customer": _ref(C, customer),
            "txn_date": "2026-11-02",
            "terms": "2",
            "lines": [_line(goods, "200.00", taxable=True), _line(labour, "100.00")],
            "discount_percent": "10",
            "tax_after_discount": True,
            "shipping": "15.00",
        },
    )
    us.runner.run_until_quiet()
    app = assert_agree(us, invoice)
    # 300 - 30 discount + 15 shipping + 8% of (200 - 20, its share of the discount)
    assert (app["discount"], app["tax_total"], app["total"]) == (
        Decimal("30.00"),
        Decimal("14.40"),
        Decimal("299.40"),
    )
    assert str(app["due_date"]) == "2026-11-17"  # Net 15, computed by QuickBooks
    # Only the discount changes in the app: QuickBooks gets every line again (one Line array).
    us.app.edit(INV, invoice, discount_percent=Decimal("20"))
    us.runner.run_until_quiet()
    app = assert_agree(us, invoice)
    assert (app["discount"], app["tax_total"], app["total"]) == (
        Decimal("60.00"),
        Decimal("12.80"),
        Decimal("267.80"),
    )
    kinds = [line["DetailType"] for line in us.in_qbo(INV, invoice)["Line"]]
    assert kinds.count("SalesItemLineDetail") == 3  # two items and shipping, kept


def test_a_payment_split_over_three_invoices(us: Book[FakeConnector]) -> None:
    customer, goods, _ = stock(us)
    invoices = [
        us.app.create(INV, {"customer": _ref(C, customer), "lines": [_line(goods, amount, taxable=True)]})
        for amount in ("100.00", "50.00", "25.00")
    ]
    us.runner.run_until_quiet()
    payment = us.app.create(
        PAY,
        {
            "customer": _ref(C, customer),
            "total": "160.00",
            "applications": [
                {"invoice": _ref(INV, invoices[0]), "amount": "108.00"},  # in full, with its tax
                {"invoice": _ref(INV, invoices[1]), "amount": "20.00"},  # in part
                {"invoice": _ref(INV, invoices[2]), "amount": "27.00"},
            ],
        },
    )
    us.runner.run_until_quiet()
    assert us.in_qbo(PAY, payment)["UnappliedAmt"] == 5.0  # a credit the customer keeps
    balances = [assert_agree(us, i)["balance"] for i in invoices]
    assert balances == [Decimal("0.00"), Decimal("34.00"), Decimal("0.00")]


def test_a_tax_code_quickbooks_lacks_is_parked_naming_it(us: Book[FakeConnector]) -> None:
    customer, goods, _ = stock(us)
    us.app.create(INV, {"customer": _ref(C, customer), "lines": [_line(goods, "10.00")], "tax_code": "77"})
    before = us.qbo.request_log()["by_endpoint"].get("invoice", 0)
    us.runner.run_until_quiet()
    (error,) = us.parked()
    assert "'77'" in error and "tax code" in error
    assert us.qbo.request_log()["by_endpoint"].get("invoice", 0) == before  # nothing was sent


def test_uk_invoice_with_vat_per_line(tmp_path: Path) -> None:
    with ExitStack() as stack:
        book = open_book(stack, tmp_path, CompanyProfile.uk(), UK)
        customer, goods, labour = stock(book)
        invoice = book.app.create(
            INV,
            {
                "customer": _ref(C, customer),
                "lines": [
                    _line(goods, "100.00", taxable=True),  # standard 20%
                    _line(labour, "40.00", tax_code="3"),  # reduced 5%
                    _line(labour, "10.00"),  # exempt
                ],
            },
        )
        book.runner.run_until_quiet()
        qbo = book.in_qbo(INV, invoice)
        assert qbo["GlobalTaxCalculation"] == "TaxExcluded"
        assert [line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in qbo["Line"][:3]] == [
            "2",
            "3",
            "5",
        ]
        app = assert_agree(book, invoice)
        assert (app["tax_total"], app["total"], app["currency"]) == (
            Decimal("22.00"),
            Decimal("172.00"),
            None,
        )
        assert [line["tax_code"] for line in app["lines"]] == [None, "3", None]
        # The bookkeeper changes a line's amount in QuickBooks: VAT is recomputed and reaches the app.
        lines = [dict(line) for line in qbo["Line"] if line["DetailType"] == "SalesItemLineDetail"]
        lines[0]["Amount"] = 200.0
        book.qbo.edit_record("Invoice", qbo["Id"], {"Line": lines})
        book.runner.run_until_quiet()
        app = assert_agree(book, invoice)
        assert (app["tax_total"], app["total"]) == (Decimal("42.00"), Decimal("292.00"))
        assert app["lines"][0]["amount"] == Decimal("200.00")
        assert book.runner.run_until_quiet().applied == 0


def test_a_eur_invoice_in_a_usd_company(tmp_path: Path) -> None:
    mapping = US_AST.model_copy(update={"currencies": frozenset({"EUR", "GBP"})})
    with ExitStack() as stack:
        book = open_book(stack, tmp_path, CompanyProfile.us_automated_sales_tax(multicurrency=True), mapping)
        customer, _, labour = stock(book, "EUR")
        invoice = book.app.create(
            INV, {"customer": _ref(C, customer), "currency": "EUR", "lines": [_line(labour, "100.00")]}
        )
        book.runner.run_until_quiet()
        assert book.in_qbo(C, customer)["CurrencyRef"]["value"] == "EUR"
        qbo = book.in_qbo(INV, invoice)
        assert qbo["CurrencyRef"]["value"] == "EUR"
        app = assert_agree(book, invoice)
        assert (app["exchange_rate"], app["home_total"]) == (Decimal("1.1"), Decimal("110.00"))
        assert app["home_total"] == money(qbo["HomeTotalAmt"])
        # A currency QuickBooks lacks is refused before sending, naming it.
        book.app.create(
            INV, {"customer": _ref(C, customer), "currency": "JPY", "lines": [_line(labour, "5.00")]}
        )
        book.runner.run_until_quiet()
        (error,) = book.parked()
        assert "'JPY'" in error
