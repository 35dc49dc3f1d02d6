"""Sales tax, discounts and shipping: an invoice's totals and `TxnTaxDetail`, as QuickBooks computes them.

Facts (qbo-api-facts §3.3, §3.5): US lines carry the pseudo codes TAX/NON (anything else is fault 6100) and
the invoice's rate group is `TxnTaxDetail.TxnTaxCodeRef`; under Automated Sales Tax QuickBooks computes the
tax itself and ignores what the client sends; non-US lines carry real TaxCode ids and the invoice a
`GlobalTaxCalculation` (TaxExcluded | TaxInclusive | NotApplicable); TotalAmt, TxnTaxDetail and HomeTotalAmt
are computed, whatever the client sends. Intuit's sample: lines 335.25 taxable at 8% give TotalTax 26.82.

Assumptions where the facts are silent (docs/tax-and-currency.md lists them too):
- Tax is rounded half-up to the cent once per rate, on the summed taxable amount (not per line); this
  reproduces Intuit's sample.
- `TxnTaxDetail` is always recomputed from the lines, so a stale one sent with changed line amounts is
  ignored rather than kept; under Automated Sales Tax the rate group is always the company's.
- A US company not on Automated Sales Tax charges the `TxnTaxCodeRef` the invoice names (none: no tax).
- Non-US: a missing `GlobalTaxCalculation` means TaxExcluded. Under TaxInclusive the line amounts are the
  gross amounts the customer pays; the tax they contain is amount * rate / (100 + rate), per rate.
  A line without a tax code (other than under NotApplicable) is fault 6000.
- One discount line per invoice (`DiscountLineDetail`, a percent of the item subtotal or an amount), never
  more than the subtotal. With `ApplyTaxAfterDiscount` (always, outside the US) the discount lowers each
  tax code's taxable amount in proportion to that code's share of the subtotal (cents to the last code);
  without it (the US default) tax is charged on the undiscounted lines.
- Shipping is a sales line whose ItemRef is `SHIPPING_ITEM_ID`; it is never discounted and is taxed by its
  own tax code like any line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.quickbooks.emulator import faults, profile
from connectors.quickbooks.emulator.context import Context, as_number, blank, money, ref_value
from connectors.quickbooks.emulator.store import JsonDict

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
GLOBAL_CALCULATIONS = ("TaxExcluded", "TaxInclusive", "NotApplicable")
SHIPPING_ITEM_ID = "SHIPPING_ITEM_ID"


@dataclass(frozen=True)
class Priced:
    """One priced line: its amount, its tax code (None: none given) and whether it is shipping."""

    amount: Decimal
    code: str | None
    shipping: bool = False


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    detail: JsonDict


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def check_line_code(ctx: Context, code: str | None) -> str | None:
    """A line's TaxCodeRef value, checked: US companies accept TAX/NON only (6100, defaulting to NON);
    others a TaxCode the company has (2500 for one it lacks)."""
    if profile.is_us(ctx):
        code = code or "NON"
        if code not in profile.US_PSEUDO_CODES:
            raise faults.QboFaultError(
                "6100",
                "Invalid line tax code",
                "Valid Line TaxCodes for US should be TAX or NON",
                element="TaxCodeRef",
            )
        return code
    if code is None:
        return None
    row = ctx.store.get("TaxCode", code)
    if row is None or code in profile.US_PSEUDO_CODES:
        raise faults.invalid_reference("TaxCode", code)
    if row.data.get("Active") is False:
        raise faults.inactive_reference()
    return code


def discount_of(line: JsonDict, subtotal: Decimal) -> Decimal:
    """The amount a DiscountLineDetail line takes off the subtotal (percent-based lines are computed)."""
    detail: Any = line.get("DiscountLineDetail") or {}
    if not isinstance(detail, dict):
        raise faults.invalid_property("Property Name:DiscountLineDetail specified is unsupported or invalid")
    if detail.get("PercentBased") in (True, "true"):
        if blank(detail.get("DiscountPercent")):
            raise faults.required("DiscountPercent")
        percent = Decimal(str(detail["DiscountPercent"]))
        if not percent.is_finite() or not ZERO <= percent <= HUNDRED:
            raise faults.business("The discount percent must be between 0 and 100.")
        amount = cents(subtotal * percent / HUNDRED)
    else:
        if blank(line.get("Amount")):
            raise faults.required("Amount", "Required parameter Line.Amount is missing in the request")
        amount = money(line["Amount"], "Amount")
    if amount < 0 or amount > subtotal:
        raise faults.business("The discount cannot be negative or more than the subtotal.")
    return amount


def compute(ctx: Context, data: JsonDict, lines: Sequence[Priced], discount: Decimal) -> Totals:
    """Totals and TxnTaxDetail of an invoice whose priced lines and discount are known; sets
    GlobalTaxCalculation and ApplyTaxAfterDiscount on `data` as QuickBooks would return them."""
    items = [ln for ln in lines if not ln.shipping]
    subtotal = sum((ln.amount for ln in items), ZERO)
    shipping = sum((ln.amount for ln in lines if ln.shipping), ZERO)
    sent: Any = data.get("TxnTaxDetail")
    sent_code = ref_value(sent.get("TxnTaxCodeRef"), "TxnTaxCodeRef") if isinstance(sent, dict) else None
    if profile.is_us(ctx):
        data.pop("GlobalTaxCalculation", None)
        return _us(ctx, data, lines, subtotal, shipping, discount, sent_code)
    data["ApplyTaxAfterDiscount"] = True
    calculation = data.get("GlobalTaxCalculation")
    calculation = "TaxExcluded" if blank(calculation) else str(calculation)
    if calculation not in GLOBAL_CALCULATIONS:
        raise faults.invalid_enum(calculation)
    data["GlobalTaxCalculation"] = calculation
    if calculation == "NotApplicable":
        detail: JsonDict = {"TotalTax": 0}
        return Totals(subtotal, discount, shipping, ZERO, subtotal - discount + shipping, detail)
    if any(ln.code is None for ln in lines):
        raise faults.business("Make sure all your transactions have a tax rate before you save.")
    nets = _taxable(lines, discount, before_tax=True)
    inclusive = calculation == "TaxInclusive"
    tax_lines = [
        _tax_line(ctx, rate_id, net, inclusive, _code_percent(ctx, code))
        for code, net in nets.items()
        for rate_id in _rates_of(ctx, code)
    ]
    tax = sum((money(t["Amount"], "Amount") for t in tax_lines), ZERO)
    total = subtotal - discount + shipping + (ZERO if inclusive else tax)
    return Totals(
        subtotal, discount, shipping, tax, total, {"TotalTax": as_number(tax), "TaxLine": tax_lines}
    )


def _us(
    ctx: Context,
    data: JsonDict,
    lines: Sequence[Priced],
    subtotal: Decimal,
    shipping: Decimal,
    discount: Decimal,
    sent_code: str | None,
) -> Totals:
    prefs = profile.tax_prefs(ctx)
    untaxed = subtotal - discount + shipping
    if not prefs.get("UsingSalesTax"):
        # No sales tax set up: whatever rate group the client names is kept, and nothing is charged.
        kept: JsonDict = {"TxnTaxCodeRef": {"value": sent_code}} if sent_code else {}
        return Totals(subtotal, discount, shipping, ZERO, untaxed, {**kept, "TotalTax": 0})
    if prefs.get("PartnerTaxEnabled"):
        code = ref_value(prefs.get("TaxGroupCodeRef"), "TaxGroupCodeRef")
    else:
        code = sent_code
    if code is None:
        return Totals(subtotal, discount, shipping, ZERO, untaxed, {"TotalTax": 0})
    if code in profile.US_PSEUDO_CODES or ctx.store.get("TaxCode", code) is None:
        raise faults.invalid_reference("TaxCode", code)
    before_tax = data.get("ApplyTaxAfterDiscount") in (True, "true")
    net = _taxable(lines, discount, before_tax=before_tax).get("TAX", ZERO)
    tax_lines = [_tax_line(ctx, rate_id, net, False, None) for rate_id in _rates_of(ctx, code)]
    tax = sum((money(t["Amount"], "Amount") for t in tax_lines), ZERO)
    detail = {"TxnTaxCodeRef": {"value": code}, "TotalTax": as_number(tax), "TaxLine": tax_lines}
    return Totals(subtotal, discount, shipping, tax, untaxed + tax, detail)


def _taxable(lines: Sequence[Priced], discount: Decimal, *, before_tax: bool) -> dict[str, Decimal]:
    """Taxable amount per tax code: the lines' amounts, less (when `before_tax`) each code's share of
    the discount, in proportion to its share of the item subtotal; the last code takes the odd cents."""
    bases: dict[str, Decimal] = {}
    for line in lines:
        if not line.shipping and line.code is not None:
            bases[line.code] = bases.get(line.code, ZERO) + line.amount
    subtotal = sum((ln.amount for ln in lines if not ln.shipping), ZERO)
    nets = dict(bases)
    if before_tax and discount and subtotal:
        left = discount
        codes = list(bases)
        for n, code in enumerate(codes):
            share = left if n == len(codes) - 1 else cents(discount * bases[code] / subtotal)
            nets[code] -= share
            left -= share
    for line in lines:
        if line.shipping and line.code is not None:
            nets[line.code] = nets.get(line.code, ZERO) + line.amount
    return nets


def _rates_of(ctx: Context, code: str) -> list[str]:
    row = ctx.store.get("TaxCode", code)
    details: Any = ((row.data.get("SalesTaxRateList") or {}) if row else {}).get("TaxRateDetail") or []
    return [str(d["TaxRateRef"]["value"]) for d in details]


def _percent(ctx: Context, rate_id: str) -> Decimal:
    row = ctx.store.get("TaxRate", rate_id)
    return Decimal(str(row.data.get("RateValue", 0))) if row else ZERO


def _code_percent(ctx: Context, code: str) -> Decimal:
    return sum((_percent(ctx, rate) for rate in _rates_of(ctx, code)), ZERO)


def _tax_line(
    ctx: Context, rate_id: str, amount: Decimal, inclusive: bool, code_percent: Decimal | None
) -> JsonDict:
    percent = _percent(ctx, rate_id)
    if inclusive:
        assert code_percent is not None
        tax = cents(amount * percent / (HUNDRED + code_percent))
        net = amount - cents(amount * code_percent / (HUNDRED + code_percent))
    else:
        tax = cents(amount * percent / HUNDRED)
        net = amount
    detail: JsonDict = {
        "TaxRateRef": {"value": rate_id},
        "PercentBased": True,
        "TaxPercent": as_number(percent) if percent != percent.to_integral() else int(percent),
        "NetAmountTaxable": as_number(net),
    }
    if inclusive:
        detail["TaxInclusiveAmount"] = as_number(amount)
    return {"DetailType": "TaxLineDetail", "Amount": as_number(tax), "TaxLineDetail": detail}
