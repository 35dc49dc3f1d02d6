"""The configured defaults mapping needs for what QuickBooks refuses to accept without."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.errors import RecordRejectedError

#: US companies use these pseudo tax codes on lines; anything else is fault 6100.
US_TAXABLE = "TAX"
US_NON_TAXABLE = "NON"


class TaxMode(StrEnum):
    #: Lines carry the pseudo codes TAX / NON.
    US = "us"
    #: UK, AU, CA...: lines carry real TaxCode ids, and invoices a GlobalTaxCalculation.
    GLOBAL = "global"


class MappingContext(BaseModel):
    """Company-level defaults, filled from `quickbooks.defaults` in the config.

    Every value is a QuickBooks Id. A value left unset means "no default": a record that needs it is
    rejected before anything is sent, with a message naming the field and the setting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Account for items that carry no income account of their own (required for Service items).
    income_account: str | None = None
    tax_mode: TaxMode = TaxMode.US
    #: GLOBAL mode only: the TaxCode ids for taxable and non-taxable lines.
    taxable_tax_code: str | None = None
    non_taxable_tax_code: str | None = None
    #: GLOBAL mode only: how line amounts relate to tax.
    global_tax_calculation: str = Field(
        default="TaxExcluded", pattern="^(TaxExcluded|TaxInclusive|NotApplicable)$"
    )
    #: Item used for invoice lines that name no item. Mapped back to "no item" when read.
    default_item: str | None = None
    #: US only: QuickBooks computes sales tax itself (Automated Sales Tax); an invoice's tax code is
    #: then neither sent nor read, and its tax only flows QuickBooks -> app (`tax_total`).
    automated_sales_tax: bool = False
    #: The company's home currency: an invoice in it has no `currency` (None) in canonical form.
    home_currency: str = "USD"
    #: The TaxCode ids and foreign currencies the company has (None: not checked). A record naming one
    #: outside them is rejected before sending, naming the code.
    tax_codes: frozenset[str] | None = None
    currencies: frozenset[str] | None = None
    #: Fill the four settings above from the company itself when the connector is made (three metered
    #: reads; see connectors/quickbooks/sync/company.py).
    read_company: bool = False

    @model_validator(mode="after")
    def _global_mode_needs_codes(self) -> MappingContext:
        if self.tax_mode is TaxMode.GLOBAL and not (self.taxable_tax_code and self.non_taxable_tax_code):
            raise ValueError(
                "tax_mode 'global' needs quickbooks.defaults.taxable_tax_code and non_taxable_tax_code"
            )
        return self

    def line_tax_code(self, taxable: bool) -> str:
        """The TaxCodeRef value a line gets for its `taxable` flag."""
        if self.tax_mode is TaxMode.US:
            return US_TAXABLE if taxable else US_NON_TAXABLE
        code = self.taxable_tax_code if taxable else self.non_taxable_tax_code
        assert code is not None  # guaranteed by the validator
        return code

    def default_code(self, code: str | None) -> bool:
        """Whether a line's tax code is the one its taxable flag gives anyway (so it is not kept)."""
        return code is None or code in (self.line_tax_code(True), self.line_tax_code(False))

    def check_tax_code(self, code: str, what: str, *, line: bool = False) -> str:
        """`code`, if QuickBooks has it; else RecordRejectedError naming it (before anything is sent)."""
        pseudo = self.tax_mode is TaxMode.US and code in (US_TAXABLE, US_NON_TAXABLE)
        if self.tax_mode is TaxMode.US and not pseudo and line:
            raise RecordRejectedError(
                f"{what}: tax code {code!r}: a US company's lines take only TAX or NON",
                code="ledgersync.unknown_tax_code",
            )
        if not pseudo and self.tax_codes is not None and code not in self.tax_codes:
            raise RecordRejectedError(
                f"{what}: QuickBooks has no tax code {code!r} (it has {', '.join(sorted(self.tax_codes))})",
                code="ledgersync.unknown_tax_code",
            )
        return code

    def check_currency(self, currency: str, what: str) -> str:
        known = (self.currencies or frozenset()) | {self.home_currency}
        if self.currencies is not None and currency not in known:
            raise RecordRejectedError(
                f"{what}: QuickBooks has no currency {currency!r} (it has {', '.join(sorted(known))})",
                code="ledgersync.unknown_currency",
            )
        return currency

    def is_taxable_code(self, code: str | None) -> bool:
        """Whether a line's TaxCodeRef value means "taxable" (an absent code means not taxable)."""
        if code is None:
            return False
        return code == (US_TAXABLE if self.tax_mode is TaxMode.US else self.taxable_tax_code)
