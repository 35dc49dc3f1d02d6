"""Values in plain terms, and typed values checked against the field's type."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from connectors.quickbooks.labels import LABELS, record_page
from engine.model import MODELS, EntityType
from engine.web.present import EMPTY, Presenter

C, ITEM, INV, P = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT
US = Presenter(currency="USD", time_zone="America/New_York", labels=LABELS)


@pytest.mark.parametrize(
    ("entity", "field", "value", "shown"),
    [
        (C, "phone", "555-0100", "555-0100"),
        (C, "phone", None, EMPTY),
        (C, "email", "", EMPTY),
        (C, "active", False, "no"),
        (ITEM, "unit_price", "1250.5", "$1,250.50"),
        (INV, "balance", "-3.10", "-$3.10"),
        (INV, "due_date", "2026-12-02", "Dec 2, 2026"),
        (INV, "lines", [{"amount": "1.00"}, {"amount": "2.00"}], "2 line(s)"),
        (ITEM, "type", "non_inventory", "non inventory"),
        (
            C,
            "billing_address",
            {"lines": ["12 Rue de la Paix"], "city": "Montréal"},
            "12 Rue de la Paix, Montréal",
        ),
    ],
)
def test_values_read_as_an_accountant_writes_them(entity: EntityType, field: str, value: object, shown: str):
    assert US.value(entity, field, value) == shown


def test_other_currencies_and_time_zones():
    assert Presenter(currency="EUR").money("10") == "€10.00"
    assert Presenter(currency="CHF").money("10") == "10.00 CHF"
    moment = datetime(2026, 7, 1, 16, 5, tzinfo=UTC)
    assert US.when(moment) == "Jul 1, 2026, 12:05 PM EDT"
    assert Presenter(time_zone="Europe/London").when(moment) == "Jul 1, 2026, 5:05 PM BST"
    assert US.when(None) == "never"


def test_every_field_has_quickbooks_own_label():
    for entity, model in MODELS.items():
        for field in model.model_fields:
            assert field in LABELS[entity.value], (entity, field)
    assert US.label(C, "email") == "Email" and US.label(P, "total") == "Amount received"
    assert US.label("", "phone") == "Phone number"
    assert Presenter().label(C, "given_name") == "Given name"  # without QuickBooks' labels


@pytest.mark.parametrize(
    ("entity", "field", "typed", "stored"),
    [
        (C, "phone", "123", "123"),
        (C, "notes", " two  spaces ", " two  spaces "),
        (C, "email", "", None),
        (ITEM, "unit_price", "$1,250.5", "1250.50"),
        (ITEM, "unit_price", "USD 3", "3.00"),
        (INV, "due_date", "2026-11-30", "2026-11-30"),
        (C, "active", "No", False),
        (ITEM, "type", "service", "service"),
        (
            C,
            "billing_address",
            '{"city": "Oslo"}',
            {"lines": [], "city": "Oslo", "region": None, "postal_code": None, "country": None},
        ),
    ],
)
def test_a_typed_value_becomes_the_fields_type(entity: EntityType, field: str, typed: str, stored: object):
    assert US.parse(entity, field, typed) == stored


@pytest.mark.parametrize(
    ("entity", "field", "typed", "says"),
    [
        (ITEM, "unit_price", "eighty", "Sales price/rate: Type an amount, such as 1250.00."),
        (ITEM, "unit_price", "1.234", "Type an amount"),
        (INV, "due_date", "30/11/2026", "Due date: Type a date as YYYY-MM-DD"),
        (C, "active", "maybe", "Active: Type yes or no."),
        (ITEM, "type", "gadget", "Type one of: service, non_inventory."),
        (C, "billing_address", "Oslo", "Type the value as JSON"),
        (C, "display_name", "", "Customer display name"),
    ],
)
def test_a_typed_value_the_field_cannot_hold_says_what_it_expects(
    entity: EntityType, field: str, typed: str, says: str
):
    with pytest.raises(ValueError, match=re.escape(says)):
        US.parse(entity, field, typed)


def test_quickbooks_pages_for_a_real_company_and_none_for_the_emulator():
    assert record_page("production", C, "58") == "https://app.qbo.intuit.com/app/customerdetail?nameId=58"
    assert record_page("sandbox", INV, "7") == "https://app.sandbox.qbo.intuit.com/app/invoice?txnId=7"
    assert record_page("http://127.0.0.1:8700", C, "58") is None
