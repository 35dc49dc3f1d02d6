"""A company's profile: its country, sales tax, currencies and payment terms, and their seeds.

A `CompanyProfile` is chosen in `EmulatorConfig.profile` and seeded once into the store as QuickBooks
shows it: `CompanyInfo.Country`, `Preferences` (TaxPrefs, CurrencyPrefs, SalesFormsPrefs), and read-only
`TaxRate`, `TaxCode`, `Term`, `CompanyCurrency` and `ExchangeRate` records. The rules (`tax.py`,
`currencies.py`) read the stored records, never the config, so a company loaded from a state file keeps
its own settings.

The default company is today's: a US company without sales tax or multi-currency, with only the
pseudo tax codes TAX and NON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors.quickbooks.emulator.store import JsonDict

if TYPE_CHECKING:
    from connectors.quickbooks.emulator.context import Context

#: US lines carry these pseudo codes (facts §3.3); they are TaxCode records with no rates.
US_PSEUDO_CODES = ("TAX", "NON")

CURRENCY_NAMES = {
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound Sterling",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
}


@dataclass(frozen=True)
class Rate:
    """A TaxRate: a percentage collected for one agency."""

    id: str
    name: str
    percent: Decimal


@dataclass(frozen=True)
class Code:
    """A TaxCode: the rates it applies (a group when it has several, as US codes are)."""

    id: str
    name: str
    rates: tuple[str, ...]
    group: bool = False


@dataclass(frozen=True)
class Term:
    id: str
    name: str
    due_days: int


#: Net 30 is Id "3", as in Intuit's invoice sample (SalesTermRef 3, DueDate 30 days after TxnDate).
STANDARD_TERMS = (
    Term("1", "Due on receipt", 0),
    Term("2", "Net 15", 15),
    Term("3", "Net 30", 30),
    Term("4", "Net 60", 60),
)


@dataclass(frozen=True)
class CompanyProfile:
    """What kind of company the emulator plays.

    `country` "US" uses the pseudo codes TAX/NON on lines; any other country uses real TaxCode ids per
    line and `GlobalTaxCalculation`. `automated_sales_tax` (US only): QuickBooks computes the tax itself
    from `ast_code` and ignores the tax a client sends. Without it, a US company with `rates` charges the
    invoice's `TxnTaxDetail.TxnTaxCodeRef`. `currencies` are the foreign currencies a multi-currency
    company uses, with the exchange rate to the home currency.
    """

    country: str = "US"
    automated_sales_tax: bool = False
    home_currency: str = "USD"
    multicurrency: bool = False
    currencies: tuple[tuple[str, Decimal], ...] = ()
    rates: tuple[Rate, ...] = ()
    codes: tuple[Code, ...] = ()
    #: US with Automated Sales Tax: the TaxCode (group) QuickBooks picks for every invoice.
    ast_code: str | None = None
    terms: tuple[Term, ...] = STANDARD_TERMS

    @property
    def us(self) -> bool:
        return self.country == "US"

    @classmethod
    def us_automated_sales_tax(cls, *, multicurrency: bool = False) -> CompanyProfile:
        """A US company on Automated Sales Tax: California 8% (TaxCode 2, TaxRate 3, as Intuit's sample)."""
        return cls(
            automated_sales_tax=True,
            multicurrency=multicurrency,
            currencies=(("EUR", Decimal("1.1")), ("GBP", Decimal("1.25"))) if multicurrency else (),
            rates=(Rate("3", "California", Decimal("8")),),
            codes=(Code("2", "California", ("3",), group=True),),
            ast_code="2",
        )

    @classmethod
    def uk(cls) -> CompanyProfile:
        """A UK VAT-registered company: standard 20%, reduced 5%, zero-rated and exempt."""
        return cls(
            country="GB",
            home_currency="GBP",
            rates=(
                Rate("1", "20.0% S", Decimal("20")),
                Rate("2", "5.0% R", Decimal("5")),
                Rate("3", "0.0% Z", Decimal("0")),
                Rate("4", "Exempt", Decimal("0")),
            ),
            codes=(
                Code("2", "20.0% S", ("1",)),
                Code("3", "5.0% R", ("2",)),
                Code("4", "0.0% Z", ("3",)),
                Code("5", "Exempt", ("4",)),
            ),
        )


def seed(ctx: Context, put: Callable[[str, JsonDict], None]) -> None:
    """Store the configured company's settings and reference records (`put` stamps and stores one)."""
    company: CompanyProfile = ctx.config.profile
    info = ctx.store.get("CompanyInfo", "1")
    if info is not None:
        info.data["Country"] = company.country
    put(
        "Preferences",
        {
            "Id": "1",
            "TaxPrefs": {
                "UsingSalesTax": bool(company.codes),
                "PartnerTaxEnabled": company.automated_sales_tax,
                **({"TaxGroupCodeRef": {"value": company.ast_code}} if company.ast_code else {}),
            },
            "CurrencyPrefs": {
                "MultiCurrencyEnabled": company.multicurrency,
                "HomeCurrency": {"value": company.home_currency},
            },
            "SalesFormsPrefs": {"AllowShipping": True, "AllowDiscount": True, "DefaultTerms": {"value": "3"}},
        },
    )
    for tax_rate in company.rates:
        put(
            "TaxRate",
            {
                "Id": tax_rate.id,
                "Name": tax_rate.name,
                "RateValue": float(tax_rate.percent),
                "Active": True,
                "SpecialTaxType": "NONE",
            },
        )
    if company.us:
        for code, taxable in zip(US_PSEUDO_CODES, (True, False), strict=True):
            put(
                "TaxCode",
                {"Id": code, "Name": code, "Description": code, "Taxable": taxable, "TaxGroup": False},
            )
    for tax_code in company.codes:
        put("TaxCode", _tax_code(tax_code))
    for term in company.terms:
        put(
            "Term",
            {"Id": term.id, "Name": term.name, "Active": True, "Type": "STANDARD", "DueDays": term.due_days},
        )
    home = (company.home_currency, Decimal(1))
    for index, (currency, rate) in enumerate((home, *company.currencies), start=1):
        if index > 1 and not company.multicurrency:
            break
        put("CompanyCurrency", {"Id": str(index), "Code": currency, "Name": _name(currency), "Active": True})
        put(
            "ExchangeRate",
            {
                "Id": currency,
                "SourceCurrencyCode": currency,
                "TargetCurrencyCode": company.home_currency,
                "Rate": float(rate),
                "AsOfDate": ctx.clock.today().isoformat(),
            },
        )


def _name(currency: str) -> str:
    return CURRENCY_NAMES.get(currency, currency)


def _tax_code(code: Code) -> JsonDict:
    return {
        "Id": code.id,
        "Name": code.name,
        "Description": code.name,
        "Active": True,
        "Taxable": True,
        "TaxGroup": code.group,
        "SalesTaxRateList": {
            "TaxRateDetail": [
                {"TaxRateRef": {"value": rate}, "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0}
                for rate in code.rates
            ]
        },
        "PurchaseTaxRateList": {"TaxRateDetail": []},
    }


# what the rules read back from the store


def preferences(ctx: Context) -> JsonDict:
    row = ctx.store.get("Preferences", "1")
    return row.data if row is not None else {}


def is_us(ctx: Context) -> bool:
    info = ctx.store.get("CompanyInfo", "1")
    return info is None or str(info.data.get("Country", "US")) in ("US", "USA")


def tax_prefs(ctx: Context) -> JsonDict:
    prefs: Any = preferences(ctx).get("TaxPrefs")
    return prefs if isinstance(prefs, dict) else {}


def home_currency(ctx: Context) -> str:
    prefs: Any = preferences(ctx).get("CurrencyPrefs") or {}
    return str((prefs.get("HomeCurrency") or {}).get("value") or "USD")


def multicurrency(ctx: Context) -> bool:
    prefs: Any = preferences(ctx).get("CurrencyPrefs") or {}
    return bool(prefs.get("MultiCurrencyEnabled"))


def currency_name(currency: str) -> str:
    return _name(currency)
