"""Sales tax, discounts, shipping, terms and currencies in the emulator, as QuickBooks computes them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from connectors.quickbooks.emulator import Emulator, EmulatorConfig, running_emulator
from connectors.quickbooks.emulator.faults import QboFaultError
from connectors.quickbooks.emulator.profile import CompanyProfile
from connectors.quickbooks.emulator.records import create, update
from tests.emulator.conftest import FAST, Api


def _emulator(company: CompanyProfile) -> Emulator:
    return Emulator(EmulatorConfig(profile=company))


def _company_with_stock(emu: Emulator, currency: str | None = None) -> tuple[str, str]:
    ctx = emu.ctx
    customer: dict[str, Any] = {"DisplayName": f"Buyer {currency or ''}".strip()}
    if currency:
        customer["CurrencyRef"] = {"value": currency}
    customer_id = create(ctx, "Customer", customer)["Id"]
    item_id = create(
        ctx, "Item", {"Name": "Fountain", "Type": "Service", "IncomeAccountRef": {"value": "1"}}
    )["Id"]
    return customer_id, item_id


def _line(item: str, amount: str, code: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"ItemRef": {"value": item}}
    if code:
        detail["TaxCodeRef"] = {"value": code}
    return {"DetailType": "SalesItemLineDetail", "Amount": float(amount), "SalesItemLineDetail": detail}


def test_us_automated_sales_tax_reproduces_intuits_sample_and_ignores_the_tax_sent() -> None:
    emu = _emulator(CompanyProfile.us_automated_sales_tax())
    customer, item = _company_with_stock(emu)
    invoice = create(
        emu.ctx,
        "Invoice",
        {
            "CustomerRef": {"value": customer},
            "Line": [_line(item, "275", "TAX"), _line(item, "12.75", "TAX"), _line(item, "47.5", "TAX")],
            "TxnTaxDetail": {"TotalTax": 99, "TxnTaxCodeRef": {"value": "TAX"}},
        },
    )
    assert invoice["TxnTaxDetail"]["TotalTax"] == 26.82
    assert invoice["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": "2"}
    (tax_line,) = invoice["TxnTaxDetail"]["TaxLine"]
    assert tax_line["TaxLineDetail"]["NetAmountTaxable"] == 335.25
    assert tax_line["TaxLineDetail"]["TaxPercent"] == 8
    assert invoice["TotalAmt"] == 362.07 and invoice["Balance"] == 362.07


def test_us_lines_take_only_tax_or_non_fault_6100() -> None:
    emu = _emulator(CompanyProfile.us_automated_sales_tax())
    customer, item = _company_with_stock(emu)
    with pytest.raises(QboFaultError) as fault:
        create(emu.ctx, "Invoice", {"CustomerRef": {"value": customer}, "Line": [_line(item, "10", "2")]})
    assert fault.value.code == "6100"
    assert fault.value.detail == "Valid Line TaxCodes for US should be TAX or NON"


def test_non_taxable_lines_and_tax_recomputed_when_amounts_change() -> None:
    emu = _emulator(CompanyProfile.us_automated_sales_tax())
    customer, item = _company_with_stock(emu)
    invoice = create(
        emu.ctx,
        "Invoice",
        {"CustomerRef": {"value": customer}, "Line": [_line(item, "100", "TAX"), _line(item, "50", "NON")]},
    )
    assert invoice["TxnTaxDetail"]["TotalTax"] == 8.0 and invoice["TotalAmt"] == 158.0
    changed = update(
        emu.ctx,
        "Invoice",
        {
            "Id": invoice["Id"],
            "SyncToken": invoice["SyncToken"],
            "sparse": True,
            "Line": [_line(item, "200", "TAX")],
        },
    )
    assert changed["TxnTaxDetail"]["TotalTax"] == 16.0 and changed["TotalAmt"] == 216.0


def test_uk_vat_per_line_exclusive_and_inclusive() -> None:
    emu = _emulator(CompanyProfile.uk())
    customer, item = _company_with_stock(emu)
    lines = [_line(item, "100", "2"), _line(item, "40", "3"), _line(item, "10", "4")]
    excluded = create(emu.ctx, "Invoice", {"CustomerRef": {"value": customer}, "Line": lines})
    assert excluded["GlobalTaxCalculation"] == "TaxExcluded"
    by_rate = {
        t["TaxLineDetail"]["TaxRateRef"]["value"]: t["Amount"] for t in excluded["TxnTaxDetail"]["TaxLine"]
    }
    assert by_rate == {"1": 20.0, "2": 2.0, "3": 0.0}
    assert excluded["TxnTaxDetail"]["TotalTax"] == 22.0 and excluded["TotalAmt"] == 172.0
    assert excluded["CurrencyRef"]["value"] == "GBP"
    included = create(
        emu.ctx,
        "Invoice",
        {
            "CustomerRef": {"value": customer},
            "Line": [_line(item, "120", "2")],
            "GlobalTaxCalculation": "TaxInclusive",
        },
    )
    assert included["TxnTaxDetail"]["TotalTax"] == 20.0 and included["TotalAmt"] == 120.0


@pytest.mark.parametrize(
    ("line", "code"),
    [(None, "6000"), ("TAX", "2500"), ("99", "2500")],
    ids=["missing code", "US pseudo code", "unknown code"],
)
def test_uk_line_tax_codes_are_checked(line: str | None, code: str) -> None:
    emu = _emulator(CompanyProfile.uk())
    customer, item = _company_with_stock(emu)
    with pytest.raises(QboFaultError) as fault:
        create(emu.ctx, "Invoice", {"CustomerRef": {"value": customer}, "Line": [_line(item, "10", line)]})
    assert fault.value.code == code


def test_discount_percent_before_tax_and_shipping_and_terms() -> None:
    emu = _emulator(CompanyProfile.us_automated_sales_tax())
    customer, item = _company_with_stock(emu)
    invoice = create(
        emu.ctx,
        "Invoice",
        {
            "CustomerRef": {"value": customer},
            "TxnDate": "2026-03-01",
            "SalesTermRef": {"value": "2"},
            "ApplyTaxAfterDiscount": True,
            "Line": [
                _line(item, "200", "TAX"),
                {
                    "DetailType": "DiscountLineDetail",
                    "Amount": 0,
                    "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10},
                },
                _line("SHIPPING_ITEM_ID", "15", "NON"),
            ],
        },
    )
    kinds = [line["DetailType"] for line in invoice["Line"]]
    assert kinds == ["SalesItemLineDetail", "SubTotalLineDetail", "DiscountLineDetail", "SalesItemLineDetail"]
    assert invoice["Line"][2]["Amount"] == 20.0
    assert invoice["TxnTaxDetail"]["TotalTax"] == 14.4  # 8% of 180
    assert invoice["TotalAmt"] == 209.4  # 200 - 20 + 15 + 14.40
    assert invoice["DueDate"] == "2026-03-16" and invoice["SalesTermRef"]["name"] == "Net 15"


def test_discount_after_tax_by_default_in_the_us() -> None:
    emu = _emulator(CompanyProfile.us_automated_sales_tax())
    customer, item = _company_with_stock(emu)
    discount = {
        "DetailType": "DiscountLineDetail",
        "Amount": 20,
        "DiscountLineDetail": {"PercentBased": False},
    }
    invoice = create(
        emu.ctx,
        "Invoice",
        {"CustomerRef": {"value": customer}, "Line": [_line(item, "200", "TAX"), discount]},
    )
    assert invoice["ApplyTaxAfterDiscount"] is False
    assert invoice["TxnTaxDetail"]["TotalTax"] == 16.0 and invoice["TotalAmt"] == 196.0


def test_eur_invoice_in_a_usd_company_and_the_customers_currency_is_fixed() -> None:
    emu = _emulator(CompanyProfile.us_automated_sales_tax(multicurrency=True))
    customer, item = _company_with_stock(emu, "EUR")
    invoice = create(
        emu.ctx, "Invoice", {"CustomerRef": {"value": customer}, "Line": [_line(item, "100", "NON")]}
    )
    assert invoice["CurrencyRef"]["value"] == "EUR" and invoice["ExchangeRate"] == 1.1
    assert invoice["TotalAmt"] == 100.0 and invoice["HomeTotalAmt"] == 110.0
    row = emu.store.get("Customer", customer)
    assert row is not None
    with pytest.raises(QboFaultError) as fault:
        update(
            emu.ctx,
            "Customer",
            {
                "Id": customer,
                "SyncToken": row.data["SyncToken"],
                "sparse": True,
                "CurrencyRef": {"value": "USD"},
            },
        )
    assert fault.value.code == "6000"
    with pytest.raises(QboFaultError):
        create(emu.ctx, "Customer", {"DisplayName": "Yen buyer", "CurrencyRef": {"value": "JPY"}})


def test_a_payment_split_over_three_invoices_leaves_an_unapplied_credit() -> None:
    emu = _emulator(CompanyProfile.us_automated_sales_tax())
    customer, item = _company_with_stock(emu)
    invoices = [
        create(emu.ctx, "Invoice", {"CustomerRef": {"value": customer}, "Line": [_line(item, amount, "TAX")]})
        for amount in ("100", "50", "25")
    ]
    applied = [("108", invoices[0]), ("20", invoices[1]), ("27", invoices[2])]
    payment = create(
        emu.ctx,
        "Payment",
        {
            "CustomerRef": {"value": customer},
            "TotalAmt": 160.0,
            "Line": [
                {"Amount": float(amount), "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}
                for amount, inv in applied
            ],
        },
    )
    assert payment["UnappliedAmt"] == 5.0
    balances = []
    for inv in invoices:
        row = emu.store.get("Invoice", inv["Id"])
        assert row is not None
        balances.append(Decimal(str(row.data["Balance"])))
    assert balances == [Decimal("0"), Decimal("34"), Decimal("0")]


@pytest.fixture(scope="module")
def uk_api() -> Iterator[Api]:
    config = EmulatorConfig(
        profile=CompanyProfile.uk(),
        minute_seconds=FAST.minute_seconds,
        requests_per_minute=FAST.requests_per_minute,
        batch_requests_per_minute=FAST.batch_requests_per_minute,
    )
    with running_emulator(config) as qbo:
        api = Api(qbo, qbo.connect().access_token)
        yield api
        api.close()


def test_tax_codes_rates_terms_and_preferences_are_readable_and_read_only(uk_api: Api) -> None:
    codes = uk_api.query("select * from TaxCode").json()["QueryResponse"]["TaxCode"]
    assert {c["Id"] for c in codes} == {"2", "3", "4", "5"}
    rates = uk_api.query("select * from TaxRate").json()["QueryResponse"]["TaxRate"]
    assert {r["RateValue"] for r in rates} == {20.0, 5.0, 0.0}
    terms = uk_api.query("select * from Term").json()["QueryResponse"]["Term"]
    assert {t["Name"] for t in terms} >= {"Net 30"}
    prefs = uk_api.query("select * from Preferences").json()["QueryResponse"]["Preferences"]
    assert prefs[0]["CurrencyPrefs"]["HomeCurrency"] == {"value": "GBP"}
    refused = uk_api.post("/term", {"Name": "Net 7", "DueDays": 7})
    assert refused.status_code == 400
