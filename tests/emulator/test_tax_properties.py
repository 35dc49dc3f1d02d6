"""Properties of the emulator's invoice arithmetic, and of ledgersync's mapping of it: for any line amounts,
tax codes, discount and shipping, the totals are consistent (lines, discount, tax, balance), and a round
trip QuickBooks -> canonical -> QuickBooks -> canonical loses nothing."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from connectors.quickbooks.emulator import Emulator, EmulatorConfig
from connectors.quickbooks.emulator.profile import CompanyProfile
from connectors.quickbooks.emulator.records import create
from connectors.quickbooks.mapping import MappingContext, TaxMode, to_canonical, to_qbo_create
from engine.model import EntityType

CENT = Decimal("0.01")
US = Emulator(EmulatorConfig(profile=CompanyProfile.us_automated_sales_tax(multicurrency=True)))
UK = Emulator(EmulatorConfig(profile=CompanyProfile.uk()))
US_MAPPING = MappingContext(income_account="1", automated_sales_tax=True)
UK_MAPPING = MappingContext(
    income_account="1",
    tax_mode=TaxMode.GLOBAL,
    taxable_tax_code="2",
    non_taxable_tax_code="5",
    home_currency="GBP",
)


def _stock(emu: Emulator) -> tuple[str, str, str]:
    ctx = emu.ctx
    customer = create(ctx, "Customer", {"DisplayName": "Property buyer"})["Id"]
    euro = (
        create(ctx, "Customer", {"DisplayName": "Euro buyer", "CurrencyRef": {"value": "EUR"}})["Id"]
        if emu is US
        else customer
    )
    item = create(ctx, "Item", {"Name": "Thing", "Type": "Service", "IncomeAccountRef": {"value": "1"}})["Id"]
    return customer, euro, item


US_STOCK = _stock(US)
UK_STOCK = _stock(UK)

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
percents = st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2)


@st.composite
def invoices(draw: st.DrawFn, codes: tuple[str, ...]) -> dict[str, Any]:
    lines = draw(st.lists(st.tuples(amounts, st.sampled_from(codes)), min_size=1, max_size=6))
    subtotal = sum((amount for amount, _ in lines), Decimal(0))
    discount = draw(
        st.one_of(
            st.none(),
            st.tuples(st.just(True), percents),
            st.tuples(st.just(False), st.decimals(min_value=Decimal(0), max_value=subtotal, places=2)),
        )
    )
    return {
        "lines": lines,
        "discount": discount,
        "shipping": draw(st.one_of(st.none(), amounts)),
        "after": draw(st.booleans()),
        "inclusive": draw(st.booleans()),
    }


def _body(spec: dict[str, Any], customer: str, item: str, uk: bool) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [
        {
            "DetailType": "SalesItemLineDetail",
            "Amount": float(amount),
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "TaxCodeRef": {"value": code}},
        }
        for amount, code in spec["lines"]
    ]
    if spec["discount"] is not None:
        percent_based, value = spec["discount"]
        detail = {
            "PercentBased": percent_based,
            **({"DiscountPercent": float(value)} if percent_based else {}),
        }
        lines.append(
            {
                "DetailType": "DiscountLineDetail",
                "Amount": 0 if percent_based else float(value),
                "DiscountLineDetail": detail,
            }
        )
    if spec["shipping"] is not None:
        shipping_code = "5" if uk else "NON"
        lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": float(spec["shipping"]),
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "SHIPPING_ITEM_ID"},
                    "TaxCodeRef": {"value": shipping_code},
                },
            }
        )
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer},
        "Line": lines,
        "ApplyTaxAfterDiscount": spec["after"],
    }
    if uk:
        body["GlobalTaxCalculation"] = "TaxInclusive" if spec["inclusive"] else "TaxExcluded"
    return body


def d(value: Any) -> Decimal:
    return Decimal(str(value))


def _check_totals(invoice: dict[str, Any], inclusive: bool) -> None:
    items = [
        d(line["Amount"])
        for line in invoice["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
        and line["SalesItemLineDetail"]["ItemRef"]["value"] != "SHIPPING_ITEM_ID"
    ]
    shipping = sum(
        (
            d(line["Amount"])
            for line in invoice["Line"]
            if line["DetailType"] == "SalesItemLineDetail"
            and line["SalesItemLineDetail"]["ItemRef"]["value"] == "SHIPPING_ITEM_ID"
        ),
        Decimal(0),
    )
    (subtotal_line,) = [line for line in invoice["Line"] if line["DetailType"] == "SubTotalLineDetail"]
    discounts = [d(line["Amount"]) for line in invoice["Line"] if line["DetailType"] == "DiscountLineDetail"]
    subtotal = sum(items, Decimal(0))
    discount = sum(discounts, Decimal(0))
    detail = invoice["TxnTaxDetail"]
    tax = d(detail["TotalTax"])
    assert d(subtotal_line["Amount"]) == subtotal
    assert Decimal(0) <= discount <= subtotal
    assert tax == sum((d(t["Amount"]) for t in detail.get("TaxLine", [])), Decimal(0))
    assert tax >= 0
    expected = subtotal - discount + shipping + (Decimal(0) if inclusive else tax)
    assert d(invoice["TotalAmt"]) == expected
    assert d(invoice["Balance"]) == d(invoice["TotalAmt"])
    for tax_line in detail.get("TaxLine", []):
        line_detail = tax_line["TaxLineDetail"]
        if not inclusive:
            rate = d(line_detail["TaxPercent"])
            assert d(tax_line["Amount"]) == (d(line_detail["NetAmountTaxable"]) * rate / 100).quantize(
                CENT, rounding=ROUND_HALF_UP
            )


def _round_trip(emu: Emulator, invoice: dict[str, Any], mapping: MappingContext) -> None:
    fields, _ = to_canonical(EntityType.INVOICE, invoice, mapping)
    again = create(emu.ctx, "Invoice", to_qbo_create(EntityType.INVOICE, fields, mapping))
    assert to_canonical(EntityType.INVOICE, again, mapping)[0] == fields


@given(invoices(("TAX", "NON")), st.booleans())
def test_us_totals_are_consistent_and_survive_a_round_trip(spec: dict[str, Any], euro: bool) -> None:
    customer, euro_customer, item = US_STOCK
    invoice = create(US.ctx, "Invoice", _body(spec, euro_customer if euro else customer, item, uk=False))
    _check_totals(invoice, inclusive=False)
    if euro:
        home = d(invoice["TotalAmt"]) * d(invoice["ExchangeRate"])
        assert d(invoice["HomeTotalAmt"]) == home.quantize(CENT, rounding=ROUND_HALF_UP)
    _round_trip(US, invoice, US_MAPPING)


@given(invoices(("2", "3", "4", "5")))
def test_uk_vat_totals_are_consistent_and_survive_a_round_trip(spec: dict[str, Any]) -> None:
    customer, _, item = UK_STOCK
    invoice = create(UK.ctx, "Invoice", _body(spec, customer, item, uk=True))
    _check_totals(invoice, inclusive=spec["inclusive"])
    mapping = UK_MAPPING.model_copy(
        update={"global_tax_calculation": "TaxInclusive" if spec["inclusive"] else "TaxExcluded"}
    )
    _round_trip(UK, invoice, mapping)
