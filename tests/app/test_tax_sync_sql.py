"""The invoices of tests/quickbooks/test_tax_sync.py, synced both ways through the SQL app connector on a
schema that is not the example app's: the shop (tests/app/shop.py), whose bills keep tax, discount,
freight, terms, currency and exchange rate in columns of its own names and types. On SQLite and PostgreSQL,
against the emulator: a US invoice under Automated Sales Tax, a UK invoice with VAT per line, a discounted
invoice with shipping and terms, a EUR invoice in a USD company, and a payment split over three invoices.
The shop's columns and QuickBooks agree to the cent on totals, tax and balances."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.app import SqlConnector
from connectors.quickbooks.emulator.profile import CompanyProfile
from connectors.quickbooks.mapping import MappingContext
from engine.model import EntityType
from engine.parking import retry_op
from engine.plan import OpStatus
from tests.app.shop import Shop, create_shop
from tests.support.stores import postgres_schema, postgres_url
from tests.support.tax import CONNECTION, UK, US_AST, Book, assert_agree, money, open_book

C, ITEM, INV, PAY = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT
#: The shop numbers its own bills and receipts from 101; the database's sequence (records made in
#: QuickBooks) starts at 1, so the two never meet.
FIRST = 101
MULTICURRENCY = US_AST.model_copy(update={"currencies": frozenset({"EUR", "GBP"})})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    if request.param == "postgres":
        with postgres_schema() as schema:
            yield create_shop(postgres_url(), schema, tmp_path)
    else:
        yield create_shop(f"sqlite:///{tmp_path / 'shop.db'}", None, tmp_path)


def open_shop(
    stack: ExitStack, tmp_path: Path, shop: Shop, company: CompanyProfile, mapping: MappingContext
) -> Book[SqlConnector]:
    app = stack.enter_context(shop.connector(connection=CONNECTION))
    return open_book(stack, tmp_path, company, mapping, lambda _clock: app)


@pytest.fixture
def us(shop: Shop, tmp_path: Path) -> Iterator[Book[SqlConnector]]:
    with ExitStack() as stack:
        yield open_shop(stack, tmp_path, shop, CompanyProfile.us_automated_sales_tax(), US_AST)


def stock(shop: Shop, currency: str | None = None) -> str:
    """A client (in `currency`), a taxable product GOODS and a non-taxable LABOUR; the client's code."""
    code = f"C-{currency or 'HOME'}"
    shop.add_client(code, f"Buyer {currency or 'home'}", second=-60, ccy=currency)
    shop.add_product("GOODS", "Fountain", cost="275.00", vat=True)
    shop.add_product("LABOUR", "Labour", cost="50.00")
    return code


def row(product: str, amount: str, **columns: Any) -> dict[str, Any]:
    return {"product": product, "line_total": amount, "vat": product == "GOODS", **columns}


def bill(shop: Shop, bill_no: int) -> dict[str, Any]:
    (found,) = shop.rows("bills", "bill_no", bill_no)
    return found


def bill_rows(shop: Shop, bill_no: int) -> list[dict[str, Any]]:
    return shop.rows("bill_rows", "bill", bill_no, order_by="seq_no")


def bill_agrees(book: Book[SqlConnector], shop: Shop, bill_no: int | str) -> dict[str, Any]:
    """The bill's VAT, gross and owing columns hold exactly QuickBooks' tax, total and balance (no stray
    fraction of a cent), and the connector reads them as the same canonical figures; the bill's row."""
    assert_agree(book, str(bill_no))
    qbo = book.in_qbo(INV, str(bill_no))
    stored = bill(shop, int(bill_no))
    for column, figure in (
        ("vat_sum", qbo["TxnTaxDetail"]["TotalTax"]),
        ("gross", qbo["TotalAmt"]),
        ("owing", qbo["Balance"]),
    ):
        assert Decimal(str(stored[column])) == Decimal(str(figure)), column
    return stored


def sales_line(item: str, amount: float, code: str) -> dict[str, Any]:
    detail = {"ItemRef": {"value": item}, "TaxCodeRef": {"value": code}}
    return {"DetailType": "SalesItemLineDetail", "Amount": amount, "SalesItemLineDetail": detail}


def test_us_invoice_under_automated_sales_tax(us: Book[SqlConnector], shop: Shop) -> None:
    client = stock(shop)
    # The shop's own VAT figure and group: QuickBooks computes tax itself, so neither is sent.
    shop.add_bill(
        FIRST,
        client,
        [row("GOODS", "275.00"), row("LABOUR", "60.25")],
        vat_group="2",
        vat_sum="99.00",
    )
    us.runner.run_until_quiet()
    assert us.in_qbo(INV, str(FIRST))["TxnTaxDetail"]["TotalTax"] == 22.0  # 8% of the taxable row only
    stored = bill_agrees(us, shop, FIRST)
    assert (money(stored["vat_sum"]), money(stored["gross"])) == (Decimal("22.00"), Decimal("357.25"))

    # The other way: an accountant raises an invoice in QuickBooks; it becomes a bill with its tax.
    made = us.qbo.create_record(
        "Invoice",
        {
            "CustomerRef": {"value": us.qbo_id(C, client)},
            "Line": [sales_line(us.qbo_id(ITEM, "GOODS"), 335.25, "TAX")],
        },
    )
    us.runner.run_until_quiet()
    bill_no = us.app_id(INV, made["Id"])
    stored = bill_agrees(us, shop, bill_no)
    assert (stored["client_code"], money(stored["vat_sum"]), money(stored["gross"])) == (
        client,
        Decimal("26.82"),
        Decimal("362.07"),
    )
    assert stored["vat_group"] is None  # QuickBooks picks the rate itself
    ((product, vat, code),) = [(r["product"], r["vat"], r["vat_code"]) for r in bill_rows(shop, int(bill_no))]
    assert (product, bool(vat), code) == ("GOODS", True, None)
    assert us.runner.run_until_quiet().applied == 0


def test_a_discounted_invoice_with_shipping_and_terms(us: Book[SqlConnector], shop: Shop) -> None:
    client = stock(shop)
    shop.add_bill(
        FIRST,
        client,
        [row("GOODS", "200.00"), row("LABOUR", "100.00")],
        issued="2026-11-02",
        pay_terms="2",
        off_pct="10",
        vat_on_net=1,
        freight="15.00",
    )
    us.runner.run_until_quiet()
    stored = bill_agrees(us, shop, FIRST)
    # 300 - 30 discount + 15 freight + 8% of (200 - 20, its share of the discount)
    assert [money(stored[c]) for c in ("off_amt", "vat_sum", "gross")] == [
        Decimal("30.00"),
        Decimal("14.40"),
        Decimal("299.40"),
    ]
    assert str(stored["due"])[:10] == "2026-11-17"  # Net 15, computed by QuickBooks

    # Only the discount changes in the shop: QuickBooks gets every line again (one Line array).
    shop.touch("bills", "bill_no", FIRST, second=5, off_pct="20")
    us.runner.run_until_quiet()
    stored = bill_agrees(us, shop, FIRST)
    assert [money(stored[c]) for c in ("off_amt", "vat_sum", "gross")] == [
        Decimal("60.00"),
        Decimal("12.80"),
        Decimal("267.80"),
    ]
    kinds = [line["DetailType"] for line in us.in_qbo(INV, str(FIRST))["Line"]]
    assert kinds.count("SalesItemLineDetail") == 3  # two rows and the freight, kept

    # The other way: an amount discount taxed after it, shipping and Net 30, made in QuickBooks, reach the
    # shop's columns (the 0/1 flag too).
    made = us.qbo.create_record(
        "Invoice",
        {
            "CustomerRef": {"value": us.qbo_id(C, client)},
            "TxnDate": "2026-11-02",
            "SalesTermRef": {"value": "3"},
            "ApplyTaxAfterDiscount": True,
            "Line": [
                sales_line(us.qbo_id(ITEM, "GOODS"), 100.0, "TAX"),
                {
                    "DetailType": "DiscountLineDetail",
                    "Amount": 12.5,
                    "DiscountLineDetail": {"PercentBased": False},
                },
                sales_line("SHIPPING_ITEM_ID", 7.25, "NON"),
            ],
        },
    )
    us.runner.run_until_quiet()
    bill_no = int(us.app_id(INV, made["Id"]))
    stored = bill_agrees(us, shop, bill_no)
    assert (stored["pay_terms"], str(stored["due"])[:10]) == ("3", "2026-12-02")
    assert (stored["off_pct"], stored["vat_on_net"]) == (None, 1)
    # 8% of (100 - 12.50); 100 - 12.50 + 7.25 + 7.00
    assert [money(stored[c]) for c in ("off_amt", "freight", "vat_sum", "gross")] == [
        Decimal("12.50"),
        Decimal("7.25"),
        Decimal("7.00"),
        Decimal("101.75"),
    ]
    assert [r["product"] for r in bill_rows(shop, bill_no)] == ["GOODS"]  # freight is no row
    assert us.runner.run_until_quiet().applied == 0


def test_a_payment_split_over_three_invoices(us: Book[SqlConnector], shop: Shop) -> None:
    client = stock(shop)
    for n, amount in enumerate(("100.00", "50.00", "25.00", "10.00", "20.00")):
        shop.add_bill(FIRST + n, client, [row("GOODS", amount)], second=n)
    us.runner.run_until_quiet()
    shop.add_receipt(
        FIRST,
        client,
        [
            {"bill": FIRST, "paid": "108.00"},  # in full, with its tax
            {"bill": FIRST + 1, "paid": "20.00"},  # in part
            {"bill": FIRST + 2, "paid": "27.00"},
        ],
        second=10,
        paid="160.00",
    )
    us.runner.run_until_quiet()
    assert us.in_qbo(PAY, str(FIRST))["UnappliedAmt"] == 5.0  # a credit the client keeps
    owing = [money(bill_agrees(us, shop, FIRST + n)["owing"]) for n in range(3)]
    assert owing == [Decimal("0.00"), Decimal("34.00"), Decimal("0.00")]

    # The other way: the bookkeeper records a bank deposit paying the rest of one bill and two more.
    invoice_ids = [us.qbo_id(INV, str(FIRST + n)) for n in (1, 3, 4)]
    paid = (34.0, 10.8, 5.0)
    made = us.qbo.create_record(
        "Payment",
        {
            "CustomerRef": {"value": us.qbo_id(C, client)},
            "TotalAmt": 60.0,
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": txn, "TxnType": "Invoice"}]}
                for txn, amount in zip(invoice_ids, paid, strict=True)
            ],
        },
    )
    us.runner.run_until_quiet()
    receipt_no = us.app_id(PAY, made["Id"])
    (receipt,) = shop.rows("receipts", "receipt_no", int(receipt_no))
    assert (receipt["client_code"], money(receipt["paid"])) == (client, Decimal("60.00"))
    applied = shop.rows("receipt_rows", "receipt", int(receipt_no), order_by="seq_no")
    assert [(r["bill"], money(r["paid"])) for r in applied] == [
        (FIRST + 1, Decimal("34.00")),
        (FIRST + 3, Decimal("10.80")),
        (FIRST + 4, Decimal("5.00")),
    ]
    owing = [money(bill_agrees(us, shop, FIRST + n)["owing"]) for n in (1, 3, 4)]
    assert owing == [Decimal("0.00"), Decimal("0.00"), Decimal("16.60")]
    assert us.runner.run_until_quiet().applied == 0


def test_uk_invoice_with_vat_per_line(shop: Shop, tmp_path: Path) -> None:
    with ExitStack() as stack:
        book = open_shop(stack, tmp_path, shop, CompanyProfile.uk(), UK)
        client = stock(shop)
        shop.add_bill(
            FIRST,
            client,
            [
                row("GOODS", "100.00"),  # standard 20%
                row("LABOUR", "40.00", vat_code="3"),  # reduced 5%
                row("LABOUR", "10.00"),  # exempt
            ],
        )
        book.runner.run_until_quiet()
        qbo = book.in_qbo(INV, str(FIRST))
        assert qbo["GlobalTaxCalculation"] == "TaxExcluded"
        codes = [line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in qbo["Line"][:3]]
        assert codes == ["2", "3", "5"]
        stored = bill_agrees(book, shop, FIRST)
        assert (money(stored["vat_sum"]), money(stored["gross"]), stored["ccy"]) == (
            Decimal("22.00"),
            Decimal("172.00"),
            None,
        )
        assert [r["vat_code"] for r in bill_rows(shop, FIRST)] == [None, "3", None]

        # The bookkeeper changes a line's amount in QuickBooks: VAT is recomputed and reaches the shop.
        lines = [dict(line) for line in qbo["Line"] if line["DetailType"] == "SalesItemLineDetail"]
        lines[0]["Amount"] = 200.0
        book.qbo.edit_record("Invoice", qbo["Id"], {"Line": lines})
        book.runner.run_until_quiet()
        stored = bill_agrees(book, shop, FIRST)
        assert (money(stored["vat_sum"]), money(stored["gross"])) == (Decimal("42.00"), Decimal("292.00"))
        assert money(bill_rows(shop, FIRST)[0]["line_total"]) == Decimal("200.00")

        # The shop moves the exempt row to the reduced rate: QuickBooks recomputes the VAT.
        shop.run(f"UPDATE bill_rows SET vat_code = '3' WHERE bill = {FIRST} AND seq_no = 3")
        shop.touch("bills", "bill_no", FIRST, second=5)
        book.runner.run_until_quiet()
        qbo = book.in_qbo(INV, str(FIRST))
        assert qbo["Line"][2]["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "3"
        stored = bill_agrees(book, shop, FIRST)
        assert (money(stored["vat_sum"]), money(stored["gross"])) == (Decimal("42.50"), Decimal("292.50"))

        # ...and raises one with a zero-rated line: its code lands in the row's VAT code column.
        made = book.qbo.create_record(
            "Invoice",
            {
                "CustomerRef": {"value": book.qbo_id(C, client)},
                "Line": [
                    sales_line(book.qbo_id(ITEM, "GOODS"), 50.0, "2"),
                    sales_line(book.qbo_id(ITEM, "LABOUR"), 30.0, "4"),
                ],
            },
        )
        book.runner.run_until_quiet()
        bill_no = int(book.app_id(INV, made["Id"]))
        stored = bill_agrees(book, shop, bill_no)
        assert (money(stored["vat_sum"]), money(stored["gross"])) == (Decimal("10.00"), Decimal("90.00"))
        assert [(bool(r["vat"]), r["vat_code"]) for r in bill_rows(shop, bill_no)] == [
            (True, None),
            (False, "4"),
        ]
        assert book.runner.run_until_quiet().applied == 0


def test_a_eur_invoice_in_a_usd_company(shop: Shop, tmp_path: Path) -> None:
    with ExitStack() as stack:
        company = CompanyProfile.us_automated_sales_tax(multicurrency=True)
        book = open_shop(stack, tmp_path, shop, company, MULTICURRENCY)
        client = stock(shop, "EUR")
        shop.add_bill(FIRST, client, [row("LABOUR", "100.00")], ccy="EUR")
        book.runner.run_until_quiet()
        assert book.in_qbo(C, client)["CurrencyRef"]["value"] == "EUR"
        qbo = book.in_qbo(INV, str(FIRST))
        assert qbo["CurrencyRef"]["value"] == "EUR"
        stored = bill_agrees(book, shop, FIRST)
        assert (Decimal(str(stored["fx"])), money(stored["gross_home"])) == (
            Decimal("1.1"),
            Decimal("110.00"),
        )
        assert money(stored["gross_home"]) == money(qbo["HomeTotalAmt"])
        assert book.in_app(INV, str(FIRST))["exchange_rate"] == Decimal("1.1")

        # The shop's own rate for a bill goes to QuickBooks, which converts at it.
        shop.add_bill(FIRST + 1, client, [row("LABOUR", "50.00")], second=5, ccy="EUR", fx=1.08)
        book.runner.run_until_quiet()
        assert book.in_qbo(INV, str(FIRST + 1))["ExchangeRate"] == 1.08
        stored = bill_agrees(book, shop, FIRST + 1)
        assert (Decimal(str(stored["fx"])), money(stored["gross_home"])) == (
            Decimal("1.08"),
            Decimal("54.00"),
        )

        # The other way: an invoice in euros at the day's rate, made in QuickBooks.
        made = book.qbo.create_record(
            "Invoice",
            {
                "CustomerRef": {"value": book.qbo_id(C, client)},
                "ExchangeRate": 1.0725,
                "Line": [sales_line(book.qbo_id(ITEM, "LABOUR"), 80.0, "NON")],
            },
        )
        book.runner.run_until_quiet()
        bill_no = int(book.app_id(INV, made["Id"]))
        stored = bill_agrees(book, shop, bill_no)
        assert (stored["ccy"], Decimal(str(stored["fx"])), money(stored["gross_home"])) == (
            "EUR",
            Decimal("1.0725"),
            Decimal("85.80"),
        )
        assert book.runner.run_until_quiet().applied == 0


def test_a_tax_code_or_currency_quickbooks_lacks_parks_its_bill_naming_it(shop: Shop, tmp_path: Path) -> None:
    with ExitStack() as stack:
        company = CompanyProfile.us_automated_sales_tax(multicurrency=True)
        book = open_shop(stack, tmp_path, shop, company, MULTICURRENCY)
        client = stock(shop, "EUR")
        shop.add_bill(FIRST, client, [row("LABOUR", "10.00")], ccy="EUR", vat_group="77")
        shop.add_bill(FIRST + 1, client, [row("LABOUR", "5.00")], ccy="JPY", second=1)
        shop.add_bill(FIRST + 2, client, [row("LABOUR", "20.00")], ccy="EUR", second=2)
        book.runner.run_until_quiet()
        (code,) = [e for e in book.parked() if "'77'" in e]
        (currency,) = [e for e in book.parked() if "'JPY'" in e]
        assert "tax code" in code and "currency" in currency
        assert len(book.parked()) == 2
        records = book.qbo.emulator.store
        with records.lock:
            assert len(records.all("Invoice")) == 1  # nothing of the two was sent
        assert money(bill_agrees(book, shop, FIRST + 2)["gross"]) == Decimal("20.00")  # the rest syncs

        # The shop corrects both bills and someone presses Retry, as the parked list advises: they go
        # through as they now are (the refused values are not sent again).
        shop.touch("bills", "bill_no", FIRST, second=5, vat_group=None)
        shop.touch("bills", "bill_no", FIRST + 1, second=6, ccy="EUR")
        book.runner.run_until_quiet()
        with book.store.session() as s:
            for parked in s.ops(CONNECTION, [OpStatus.PARKED]):
                retry_op(s, parked.op.op_id, "shop", datetime.now(UTC))
        book.runner.run_until_quiet()
        assert book.parked() == []
        assert [money(bill_agrees(book, shop, FIRST + n)["gross"]) for n in (0, 1)] == [
            Decimal("10.00"),
            Decimal("5.00"),
        ]
