"""Sparse update bodies: only what changed, whole line arrays, clears as "", never computed fields."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.quickbooks.mapping import MappingContext, suffixed_name, to_qbo_sparse_update
from engine.model import EntityType, Side

CTX = MappingContext(income_account="82")


def qbo_ref(entity: EntityType, qbo_id: str) -> dict[str, object]:
    return {"entity": entity, "id": qbo_id, "side": Side.QUICKBOOKS}


def test_customer_sparse_update_carries_only_the_changed_field():
    body = to_qbo_sparse_update(EntityType.CUSTOMER, {"email": "new@example.com"}, "2", 0, CTX)
    assert body == {
        "Id": "2",
        "SyncToken": "0",
        "sparse": True,
        "PrimaryEmailAddr": {"Address": "new@example.com"},
    }


def test_cleared_values_are_sent_blank_because_quickbooks_ignores_absent_keys():
    body = to_qbo_sparse_update(
        EntityType.CUSTOMER, {"notes": None, "phone": None, "billing_address": None}, "2", 1, CTX
    )
    assert body["Notes"] == ""
    assert body["PrimaryPhone"] == {"FreeFormNumber": ""}
    assert set(body["BillAddr"].values()) == {""}
    assert {"Line1", "Line5", "City", "CountrySubDivisionCode", "PostalCode", "Country"} <= body[
        "BillAddr"
    ].keys()


def test_a_shorter_address_blanks_the_lines_it_no_longer_has():
    address = {
        "lines": ("1 Main St",),
        "city": "Bayshore",
        "region": None,
        "postal_code": None,
        "country": None,
    }
    body = to_qbo_sparse_update(EntityType.CUSTOMER, {"billing_address": address}, "2", 1, CTX)
    assert body["BillAddr"]["Line1"] == "1 Main St"
    assert body["BillAddr"]["Line2"] == ""
    assert body["BillAddr"]["City"] == "Bayshore"


def test_invoice_line_change_sends_every_line_and_no_computed_totals():
    lines = (
        {"item": qbo_ref(EntityType.ITEM, "5"), "amount": Decimal("275.00"), "taxable": True},
        {"item": qbo_ref(EntityType.ITEM, "11"), "amount": Decimal("12.75"), "quantity": Decimal("1.5")},
    )
    changed = {"lines": lines, "total": Decimal("287.75"), "balance": Decimal("287.75")}
    body = to_qbo_sparse_update(EntityType.INVOICE, changed, "130", "4", CTX)
    assert set(body) == {"Id", "SyncToken", "sparse", "Line"}
    assert [line["SalesItemLineDetail"]["ItemRef"]["value"] for line in body["Line"]] == ["5", "11"]
    assert [line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in body["Line"]] == ["TAX", "NON"]
    assert body["Line"][1]["SalesItemLineDetail"]["Qty"] == 1.5


def test_invoice_sparse_update_matches_intuit_sample():
    body = to_qbo_sparse_update(EntityType.INVOICE, {"due_date": "2015-09-30"}, "238", 0, CTX)
    assert body == {"SyncToken": "0", "Id": "238", "sparse": True, "DueDate": "2015-09-30"}


def test_payment_application_change_sends_every_application():
    apps = (
        {"invoice": qbo_ref(EntityType.INVOICE, "70"), "amount": Decimal("55.00")},
        {"invoice": qbo_ref(EntityType.INVOICE, "71"), "amount": Decimal("10.00")},
    )
    body = to_qbo_sparse_update(EntityType.PAYMENT, {"applications": apps}, "163", 0, CTX)
    assert body["Line"] == [
        {"Amount": 55.0, "LinkedTxn": [{"TxnId": "70", "TxnType": "Invoice"}]},
        {"Amount": 10.0, "LinkedTxn": [{"TxnId": "71", "TxnType": "Invoice"}]},
    ]


def test_item_cleared_account_falls_back_to_the_default_or_is_left_alone():
    assert to_qbo_sparse_update(EntityType.ITEM, {"income_account": None}, "4", 1, CTX)[
        "IncomeAccountRef"
    ] == {"value": "82"}
    body = to_qbo_sparse_update(EntityType.ITEM, {"income_account": None}, "4", 1, MappingContext())
    assert "IncomeAccountRef" not in body


def test_unknown_or_invalid_fields_are_a_programming_error():
    with pytest.raises(ValueError, match="not customer fields"):
        to_qbo_sparse_update(EntityType.CUSTOMER, {"nickname": "x"}, "2", 0, CTX)
    with pytest.raises(ValueError, match="invalid item field values"):
        to_qbo_sparse_update(EntityType.ITEM, {"unit_price": "1.234"}, "4", 0, CTX)


@pytest.mark.parametrize(
    ("name", "attempt", "max_length", "expected"),
    [
        ("Amélie O'Brien", 1, 500, "Amélie O'Brien"),
        ("Amélie O'Brien", 2, 500, "Amélie O'Brien (2)"),
        ("Amélie O'Brien", 12, 500, "Amélie O'Brien (12)"),
        ("ACME: West", 3, 500, "ACME West (3)"),
        ("Design services", 2, 12, "Design s (2)"),
        ("Design  services", 2, 11, "Design (2)"),
        ("x" * 100, 2, 100, "x" * 96 + " (2)"),
    ],
)
def test_suffixed_name_appends_the_attempt_within_the_length_limit(name, attempt, max_length, expected):
    assert suffixed_name(name, attempt, max_length=max_length) == expected
    assert len(expected) <= max_length


def test_suffixed_name_counts_attempts_from_one():
    with pytest.raises(ValueError, match="from 1"):
        suffixed_name("A", 0)
    assert len(suffixed_name("é" * 600, 7)) == 500
