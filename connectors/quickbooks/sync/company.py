"""What the connected company uses, read from QuickBooks once: its country's tax mode, Automated Sales Tax,
home and foreign currencies, and tax codes, as the `MappingContext` settings that check them before sending.

Three metered reads (Preferences, TaxCode, CompanyCurrency), worth making once per connection, not per
write: TaxCode is not in CDC, so a company's new tax code is only seen by reading this again. Values the
configuration already gives (`quickbooks.defaults`) are kept; this fills the checks the configuration left
open (`tax_codes` and `currencies` unset).
"""

from __future__ import annotations

from typing import Any

from connectors.quickbooks.client import QboClient
from connectors.quickbooks.mapping import MappingContext


def read_company(client: QboClient, mapping: MappingContext) -> MappingContext:
    """`mapping`, with `automated_sales_tax`, `home_currency`, `tax_codes` and `currencies` as QuickBooks
    has them (the configured `tax_codes` / `currencies` win when set)."""
    preferences = next(iter(client.query("select * from Preferences")), {})
    tax_prefs: Any = preferences.get("TaxPrefs") or {}
    currency_prefs: Any = preferences.get("CurrencyPrefs") or {}
    home = str((currency_prefs.get("HomeCurrency") or {}).get("value") or mapping.home_currency)
    update: dict[str, Any] = {
        "automated_sales_tax": mapping.automated_sales_tax or bool(tax_prefs.get("PartnerTaxEnabled")),
        "home_currency": home,
    }
    if mapping.tax_codes is None:
        codes = client.query("select * from TaxCode maxresults 1000")
        update["tax_codes"] = frozenset(str(code["Id"]) for code in codes if code.get("Active", True))
    if mapping.currencies is None:
        used = (
            client.query("select * from CompanyCurrency")
            if currency_prefs.get("MultiCurrencyEnabled")
            else []
        )
        update["currencies"] = frozenset(str(c["Code"]) for c in used if c.get("Active", True)) - {home}
    return mapping.model_copy(update=update)
