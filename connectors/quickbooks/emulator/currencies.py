"""Currencies of customers and transactions in a (multi-currency) company, and home-currency amounts.

Facts (§3.1, §3.3): a customer's `CurrencyRef` is set once and defaults to the home currency; invoices
return `CurrencyRef`, and `HomeTotalAmt` is computed. Assumptions where the facts are silent: a currency the
company does not use, a transaction in another currency than its customer's, and a change of a customer's
currency are all fault 6000 (Business Validation Error); `ExchangeRate` (units of home currency per unit of
the transaction's) defaults to the company's stored rate, may be sent by the client, and is 1 for the home
currency; home amounts are rounded half-up to the cent.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.quickbooks.emulator import faults, profile
from connectors.quickbooks.emulator.context import Context, blank, ref_value
from connectors.quickbooks.emulator.store import JsonDict
from connectors.quickbooks.emulator.tax import cents

ONE = Decimal(1)


def ref(currency: str) -> JsonDict:
    return {"value": currency, "name": profile.currency_name(currency)}


def check(ctx: Context, currency: str) -> None:
    """Fault 6000 unless the company can use `currency`."""
    if currency == profile.home_currency(ctx):
        return
    if not profile.multicurrency(ctx):
        raise faults.business(f"Multicurrency is not turned on, so {currency} cannot be used.")
    used = {str(row.data.get("Code")) for row in ctx.store.all("CompanyCurrency") if row.data.get("Active")}
    if currency not in used:
        raise faults.business(f"The currency {currency} is not set up in this company.")


def customer_currency(ctx: Context, data: JsonDict, existing: JsonDict | None) -> None:
    """Fill a customer's CurrencyRef: the home currency unless given at create; fixed afterwards."""
    sent = ref_value(data.get("CurrencyRef"), "CurrencyRef")
    before = ref_value(existing.get("CurrencyRef"), "CurrencyRef") if existing else None
    if before is not None:
        if sent is not None and sent != before:
            raise faults.business(
                f"You can't change the currency of a customer: it is {before} and stays so, not {sent}."
            )
        data["CurrencyRef"] = ref(before)
        return
    currency = sent or profile.home_currency(ctx)
    check(ctx, currency)
    data["CurrencyRef"] = ref(currency)


def transaction_currency(ctx: Context, data: JsonDict, customer: JsonDict | None) -> Decimal:
    """Set a transaction's CurrencyRef (its customer's) and ExchangeRate; return the rate."""
    home = profile.home_currency(ctx)
    theirs = ref_value((customer or {}).get("CurrencyRef"), "CurrencyRef") or home
    sent = ref_value(data.get("CurrencyRef"), "CurrencyRef")
    if sent is not None and sent != theirs:
        check(ctx, sent)
        raise faults.business(f"The transaction's currency {sent} must be its customer's currency {theirs}.")
    data["CurrencyRef"] = ref(theirs)
    if theirs == home:
        rate = ONE
    elif not blank(data.get("ExchangeRate")):
        rate = _rate(data["ExchangeRate"])
    else:
        stored = ctx.store.get("ExchangeRate", theirs)
        rate = _rate(stored.data.get("Rate")) if stored else ONE
    if profile.multicurrency(ctx):
        data["ExchangeRate"] = float(rate)
    else:
        data.pop("ExchangeRate", None)
    return rate


def home_amount(amount: Decimal, rate: Decimal) -> float:
    return float(cents(amount * rate))


def _rate(value: Any) -> Decimal:
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        raise faults.invalid_property(
            "Property Name:ExchangeRate specified is unsupported or invalid"
        ) from None
    if not rate.is_finite() or rate <= 0:
        raise faults.invalid_property("Property Name:ExchangeRate specified is unsupported or invalid")
    return rate
