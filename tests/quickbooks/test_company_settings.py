"""`read_company`: the connected company's tax codes, currencies and Automated Sales Tax, read from
QuickBooks, so an invoice naming one it lacks is refused before sending."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from connectors.quickbooks.emulator.profile import CompanyProfile
from connectors.quickbooks.mapping import MappingContext, to_qbo_create
from connectors.quickbooks.sync.company import read_company
from engine.errors import RecordRejectedError
from engine.model import EntityType, Side
from tests.quickbooks.conftest import Rig
from tests.support.stores import fresh_store


def _read(tmp_path: Path, company: CompanyProfile, mapping: MappingContext) -> MappingContext:
    with ExitStack() as stack:
        store = stack.enter_context(fresh_store("sqlite", tmp_path))
        rig = Rig(stack.enter_context(running_emulator(EmulatorConfig(profile=company))), store, stack)
        rig.connect("c1")
        return read_company(rig.client("c1"), mapping)


def _invoice(**fields: object) -> dict[str, object]:
    customer = {"entity": EntityType.CUSTOMER, "id": "1", "side": Side.QUICKBOOKS}
    item = {"entity": EntityType.ITEM, "id": "1", "side": Side.QUICKBOOKS}
    return {"customer": customer, "lines": [{"item": item, "amount": "10.00"}], **fields}


def test_a_multicurrency_company_on_automated_sales_tax(tmp_path: Path) -> None:
    read = _read(tmp_path, CompanyProfile.us_automated_sales_tax(multicurrency=True), MappingContext())
    assert read.automated_sales_tax and read.home_currency == "USD"
    assert read.tax_codes == frozenset({"TAX", "NON", "2"}) and read.currencies == frozenset({"EUR", "GBP"})
    assert to_qbo_create(EntityType.INVOICE, _invoice(currency="EUR"), read)["CurrencyRef"] == {
        "value": "EUR"
    }
    with pytest.raises(RecordRejectedError, match="'JPY'"):
        to_qbo_create(EntityType.INVOICE, _invoice(currency="JPY"), read)
    with pytest.raises(RecordRejectedError, match="'9'"):
        to_qbo_create(EntityType.INVOICE, _invoice(tax_code="9"), read)


def test_configured_lists_win_and_a_single_currency_company_has_no_foreign_currency(tmp_path: Path) -> None:
    read = _read(tmp_path, CompanyProfile.uk(), MappingContext(tax_codes=frozenset({"2"})))
    assert read.home_currency == "GBP" and read.currencies == frozenset()
    assert read.tax_codes == frozenset({"2"}) and not read.automated_sales_tax
