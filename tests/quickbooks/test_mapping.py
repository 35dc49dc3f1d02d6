"""QuickBooks mapping against Intuit's own sample payloads: reads, create bodies, and what is rejected."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.quickbooks.mapping import (
    UNSUPPORTED_TYPE,
    MappingContext,
    TaxMode,
    is_deleted,
    to_canonical,
    to_qbo_create,
    to_qbo_delete,
    to_qbo_inactivate,
    to_qbo_void,
    version_of,
)
from engine.errors import RecordRejectedError
from engine.model import EntityType, ItemType, Side

SAMPLES: dict[str, Any] = json.loads((Path(__file__).parent / "payloads" / "qbo-samples.json").read_text())
US = MappingContext(income_account="82")
PACIFIC_DST = timezone(timedelta(hours=-7))


def sample(*path: str) -> dict[str, Any]:
    node: Any = SAMPLES
    for key in path:
        node = node[key]
    return copy.deepcopy(node)


def qbo_ref(entity: EntityType, qbo_id: str) -> dict[str, Any]:
    return {"entity": entity, "id": qbo_id, "side": Side.QUICKBOOKS}


# --- reading Intuit's samples ---------------------------------------------------------------------------


def test_intuit_customer_sample_reads_as_canonical_fields_and_version():
    fields, version = to_canonical(
        EntityType.CUSTOMER, sample("customer_create", "response", "body", "Customer")
    )

    assert fields == {
        "display_name": "King's Groceries",
        "given_name": "James",
        "family_name": "King",
        "company_name": "King Groceries",
        "email": "jdrew@myemail.com",
        "phone": "(555) 555-5555",
        "billing_address": {
            "lines": ("123 Main Street",),
            "city": "Mountain View",
            "region": "CA",
            "postal_code": "94042",
            "country": "USA",
        },
        "notes": "Here are other details.",
        "active": True,
        "currency": None,  # USD: the home currency
    }
    assert version.seq == 0
    assert version.at == datetime(2015, 7, 23, 10, 58, 12, tzinfo=PACIFIC_DST)


def test_queried_customer_address_ignores_read_only_id_and_geocode():
    row = sample("query_response_customer", "body", "QueryResponse", "Customer")[0]
    fields, version = to_canonical(EntityType.CUSTOMER, row)
    assert version.seq == 5
    assert fields["billing_address"] == {
        "lines": ("4581 Finch St.",),
        "city": "Bayshore",
        "region": "CA",
        "postal_code": "94326",
        "country": None,
    }


def test_intuit_item_samples_read_with_money_in_exact_cents():
    concrete, design = sample("item_query_response", "body", "QueryResponse", "Item")
    fields, version = to_canonical(EntityType.ITEM, concrete)
    assert fields == {
        "name": "Concrete",
        "type": ItemType.SERVICE,
        "description": "Concrete for fountain installation",
        "unit_price": Decimal("0.00"),
        "income_account": "48",
        "taxable": True,
        "active": True,
    }
    assert version.seq == 1
    assert to_canonical(EntityType.ITEM, design)[0]["unit_price"] == Decimal("75.00")


def test_invoice_reads_sales_lines_only_and_takes_totals_from_quickbooks():
    invoice = sample("invoice_with_tax_detail_excerpt", "body_excerpt", "Invoice")
    fields, _ = to_canonical(EntityType.INVOICE, invoice)

    assert fields["customer"] == qbo_ref(EntityType.CUSTOMER, "24")
    assert (fields["doc_number"], fields["txn_date"], fields["due_date"]) == (
        "1037",
        date(2014, 9, 19),
        date(2014, 10, 19),
    )
    assert [line["item"]["id"] for line in fields["lines"]] == ["5", "11", "3"]  # SubTotal line dropped
    assert fields["lines"][2] == {
        "item": qbo_ref(EntityType.ITEM, "3"),
        "description": "Concrete for fountain installation",
        "quantity": Decimal(5),
        "unit_price": Decimal("9.50"),
        "amount": Decimal("47.50"),
        "taxable": True,
        "tax_code": None,  # TAX: what the taxable flag says anyway
    }
    assert (fields["total"], fields["balance"]) == (Decimal("362.07"), Decimal("362.07"))
    assert (fields["tax_total"], fields["tax_code"], fields["terms"]) == (Decimal("26.82"), "2", "3")


def test_invoice_line_without_qty_or_price_defaults_like_quickbooks():
    fields, _ = to_canonical(EntityType.INVOICE, sample("invoice_create", "response", "body", "Invoice"))
    (line,) = fields["lines"]
    assert line == {
        "item": qbo_ref(EntityType.ITEM, "1"),
        "description": None,
        "quantity": Decimal(1),
        "unit_price": None,
        "amount": Decimal("100.00"),
        "taxable": False,  # TaxCodeRef NON
        "tax_code": None,
    }


def test_payment_reads_invoice_links_as_applications():
    applied, _ = to_canonical(
        EntityType.PAYMENT, sample("payment_applied_to_invoice", "response", "body", "Payment")
    )
    assert applied == {
        "customer": qbo_ref(EntityType.CUSTOMER, "20"),
        "txn_date": date(2015, 1, 16),
        "total": Decimal("65.00"),
        "reference_number": None,
        "applications": ({"invoice": qbo_ref(EntityType.INVOICE, "70"), "amount": Decimal("55.00")},),
    }
    unapplied, _ = to_canonical(
        EntityType.PAYMENT, sample("payment_create_unapplied", "response", "body", "Payment")
    )
    assert unapplied["applications"] == ()
    voided, version = to_canonical(EntityType.PAYMENT, sample("payment_void", "response", "body", "Payment"))
    assert (voided["total"], version.seq) == (Decimal("0.00"), 2)


def test_payment_lines_linking_other_transactions_are_not_applications():
    payment = sample("payment_applied_to_invoice", "response", "body", "Payment")
    payment["Line"].append({"Amount": 5.0, "LinkedTxn": [{"TxnId": "9", "TxnType": "CreditMemo"}]})
    fields, _ = to_canonical(EntityType.PAYMENT, payment)
    assert [a["invoice"]["id"] for a in fields["applications"]] == ["70"]


def test_unknown_and_modern_fields_are_ignored():
    invoice = sample("invoice_with_tax_detail_excerpt", "body_excerpt", "Invoice")
    before = to_canonical(EntityType.INVOICE, invoice)
    invoice["MetaData"]["LastModifiedByRef"] = {"value": "9130"}
    invoice.update(
        FreeFormAddress=True,
        TaxExemptionRef={},
        EInvoiceStatus=None,
        DeliveryInfo={"DeliveryType": "Email"},
        AllowOnlineACHPayment=False,
        SomethingIntuitAddsNextYear=[{"nested": {"deep": 1}}],
    )
    for line in invoice["Line"]:
        line["CustomExtensions"] = []
        if line["DetailType"] == "SalesItemLineDetail":
            line["SalesItemLineDetail"].update(ItemAccountRef={"value": "79"}, TaxClassificationRef={})
    invoice["Line"].append({"DetailType": "GroupLineDetail", "Amount": 10.0, "GroupLineDetail": {}})
    assert to_canonical(EntityType.INVOICE, invoice) == before


def test_description_only_lines_read_as_text_without_amount():
    invoice = sample("invoice_create", "response", "body", "Invoice")
    invoice["Line"].insert(
        1,
        {
            "DetailType": "DescriptionOnly",
            "Description": "Thanks!",
            "Amount": 3.0,
            "DescriptionLineDetail": {},
        },
    )
    fields, _ = to_canonical(EntityType.INVOICE, invoice)
    assert fields["lines"][1]["item"] is None
    assert (fields["lines"][1]["description"], fields["lines"][1]["amount"]) == ("Thanks!", Decimal("0.00"))


def test_money_is_parsed_from_the_json_number_text_not_its_float_bits():
    item = sample("item_create_service", "response", "body", "Item")
    item["UnitPrice"] = 0.1 + 0.2  # 0.30000000000000004 as QuickBooks' JSON would never send, but might
    assert to_canonical(EntityType.ITEM, item)[0]["unit_price"] == Decimal("0.30")
    item["UnitPrice"] = 12.345
    assert to_canonical(EntityType.ITEM, item)[0]["unit_price"] == Decimal("12.35")


def test_only_service_and_non_inventory_items_are_synced():
    item = sample("item_create_service", "response", "body", "Item")
    item["Type"] = "NonInventory"
    assert to_canonical(EntityType.ITEM, item)[0]["type"] is ItemType.NON_INVENTORY
    for other in ("Inventory", "Group", "Category"):
        item["Type"] = other
        with pytest.raises(RecordRejectedError, match=other) as info:
            to_canonical(EntityType.ITEM, item)
        assert info.value.code == UNSUPPORTED_TYPE


def test_a_record_without_a_valid_version_is_rejected():
    customer = sample("customer_create", "response", "body", "Customer")
    del customer["SyncToken"]
    with pytest.raises(RecordRejectedError, match="SyncToken"):
        to_canonical(EntityType.CUSTOMER, customer)
    customer = sample("customer_create", "response", "body", "Customer")
    customer["MetaData"]["LastUpdatedTime"] = "2015-07-23T10:58:12"  # no offset: ambiguous
    with pytest.raises(RecordRejectedError, match="LastUpdatedTime"):
        to_canonical(EntityType.CUSTOMER, customer)


def test_version_accepts_utc_z_and_offsets():
    stamp = {"Id": "1", "SyncToken": "12", "MetaData": {"LastUpdatedTime": "2026-08-31T19:11:06Z"}}
    assert version_of(stamp).at == datetime(2026, 8, 31, 19, 11, 6, tzinfo=UTC)
    assert version_of(stamp).seq == 12


def test_cdc_deleted_rows_are_recognised():
    estimates = sample("cdc_response", "body", "CDCResponse")[0]["QueryResponse"][1]["Estimate"]
    assert [is_deleted(row) for row in estimates] == [False, False, True]


def test_a_transaction_without_customer_has_no_canonical_form():
    invoice = sample("invoice_create", "response", "body", "Invoice")
    del invoice["CustomerRef"]
    with pytest.raises(RecordRejectedError, match="customer"):
        to_canonical(EntityType.INVOICE, invoice)


# --- create bodies ---------------------------------------------------------------------------------------


def test_customer_create_body_matches_intuit_sample_request_on_mapped_fields():
    fields, _ = to_canonical(EntityType.CUSTOMER, sample("customer_create", "response", "body", "Customer"))
    request = sample("customer_create", "request", "body")
    body = to_qbo_create(EntityType.CUSTOMER, fields, US)
    mapped = (
        "DisplayName",
        "GivenName",
        "FamilyName",
        "CompanyName",
        "PrimaryEmailAddr",
        "PrimaryPhone",
        "Notes",
    )
    assert {k: body[k] for k in mapped} == {k: request[k] for k in mapped}
    assert body["BillAddr"] == request["BillAddr"]
    assert body["Active"] is True
    assert json.loads(json.dumps(body)) == body  # plain JSON: the client can send it as is


def test_payment_create_body_matches_intuit_sample_request():
    fields, _ = to_canonical(
        EntityType.PAYMENT, sample("payment_applied_to_invoice", "response", "body", "Payment")
    )
    body = to_qbo_create(EntityType.PAYMENT, fields, US)
    assert body == {**sample("payment_applied_to_invoice", "request", "body"), "TxnDate": "2015-01-16"}


def test_invoice_create_never_sends_computed_totals_and_always_sets_detail_type():
    fields, _ = to_canonical(
        EntityType.INVOICE, sample("invoice_with_tax_detail_excerpt", "body_excerpt", "Invoice")
    )
    body = to_qbo_create(EntityType.INVOICE, fields, US)
    assert not {"TotalAmt", "Balance", "HomeTotalAmt", "Id", "SyncToken"} & body.keys()
    assert body["TxnTaxDetail"] == {"TxnTaxCodeRef": {"value": "2"}}  # the rate group, never the tax
    automated = to_qbo_create(EntityType.INVOICE, fields, US.model_copy(update={"automated_sales_tax": True}))
    assert "TxnTaxDetail" not in automated
    assert body["CustomerRef"] == {"value": "24"}
    assert body["Line"][1] == {
        "DetailType": "SalesItemLineDetail",
        "Amount": 12.75,
        "Description": "Fountain Pump",
        "SalesItemLineDetail": {
            "ItemRef": {"value": "11"},
            "Qty": 1.0,
            "TaxCodeRef": {"value": "TAX"},
            "UnitPrice": 12.75,
        },
    }


def test_item_create_uses_its_own_income_account_or_the_configured_default():
    fields, _ = to_canonical(EntityType.ITEM, sample("item_create_service", "response", "body", "Item"))
    assert to_qbo_create(EntityType.ITEM, fields, MappingContext())["IncomeAccountRef"] == {"value": "82"}
    without = {**fields, "income_account": None}
    assert to_qbo_create(EntityType.ITEM, without, MappingContext(income_account="79"))[
        "IncomeAccountRef"
    ] == {"value": "79"}


def test_service_item_without_income_account_is_rejected_before_sending():
    fields = {"name": "Design", "type": "service", "unit_price": Decimal(75)}
    with pytest.raises(RecordRejectedError) as info:
        to_qbo_create(EntityType.ITEM, fields, MappingContext())
    assert str(info.value).startswith(
        "item 'Design': QuickBooks requires an income account for Service items; "
        "set quickbooks.defaults.income_account or map income_account"
    )
    assert info.value.code == "ledgersync.required"
    non_inventory = to_qbo_create(EntityType.ITEM, {**fields, "type": "non_inventory"}, MappingContext())
    assert non_inventory["Type"] == "NonInventory"
    assert "IncomeAccountRef" not in non_inventory


def invoice_fields(**line: Any) -> dict[str, Any]:
    return {
        "customer": qbo_ref(EntityType.CUSTOMER, "1"),
        "lines": ({"amount": Decimal("100.00"), **line},),
    }


def test_invoice_without_customer_is_rejected_naming_customer_ref():
    fields = invoice_fields(item=qbo_ref(EntityType.ITEM, "1"))
    del fields["customer"]
    with pytest.raises(RecordRejectedError, match="CustomerRef"):
        to_qbo_create(EntityType.INVOICE, fields, US)


def test_invoice_without_lines_is_rejected():
    with pytest.raises(RecordRejectedError, match="at least one line"):
        to_qbo_create(EntityType.INVOICE, {"customer": qbo_ref(EntityType.CUSTOMER, "1")}, US)


def test_line_without_item_uses_the_default_item_or_is_rejected():
    with pytest.raises(RecordRejectedError, match=r"line 1.*default_item"):
        to_qbo_create(EntityType.INVOICE, invoice_fields(description="Setup"), US)

    ctx = MappingContext(income_account="82", default_item="19")
    body = to_qbo_create(EntityType.INVOICE, invoice_fields(description="Setup"), ctx)
    assert body["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "19"}
    # ...and the stand-in item reads back as "no item", so the sync does not see a change.
    echoed = {
        "Id": "5",
        "SyncToken": "0",
        "MetaData": {"LastUpdatedTime": "2026-01-05T10:00:00-08:00"},
        **body,
    }
    assert to_canonical(EntityType.INVOICE, echoed, ctx)[0]["lines"][0]["item"] is None


def test_text_only_line_with_zero_amount_is_sent_as_description_only():
    body = to_qbo_create(EntityType.INVOICE, invoice_fields(description="Thanks!", amount=Decimal(0)), US)
    assert body["Line"] == [
        {"DetailType": "DescriptionOnly", "Description": "Thanks!", "DescriptionLineDetail": {}}
    ]


def test_refs_must_already_be_quickbooks_ids():
    link_ref = {"entity": EntityType.CUSTOMER, "id": "lnk-1", "side": None}
    with pytest.raises(ValueError, match="not a QuickBooks id"):
        to_qbo_create(
            EntityType.INVOICE,
            {**invoice_fields(item=qbo_ref(EntityType.ITEM, "1")), "customer": link_ref},
            US,
        )


def test_global_tax_mode_sends_configured_codes_and_reads_them_back():
    ctx = MappingContext(
        income_account="82", tax_mode=TaxMode.GLOBAL, taxable_tax_code="7", non_taxable_tax_code="12"
    )
    fields = invoice_fields(item=qbo_ref(EntityType.ITEM, "1"), taxable=True)
    body = to_qbo_create(EntityType.INVOICE, fields, ctx)
    assert body["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "7"}
    assert body["GlobalTaxCalculation"] == "TaxExcluded"
    echoed = {
        "Id": "5",
        "SyncToken": "0",
        "MetaData": {"LastUpdatedTime": "2026-01-05T10:00:00+00:00"},
        **body,
    }
    assert to_canonical(EntityType.INVOICE, echoed, ctx)[0]["lines"][0]["taxable"] is True
    with pytest.raises(ValidationError, match="taxable_tax_code"):
        MappingContext(tax_mode=TaxMode.GLOBAL)


def test_display_name_forbidden_characters_become_spaces():
    body = to_qbo_create(
        EntityType.CUSTOMER, {"display_name": "ACME: West\tCoast\nBranch", "given_name": "Ann:Marie"}, US
    )
    assert body["DisplayName"] == "ACME West Coast Branch"
    assert body["GivenName"] == "Ann Marie"


@pytest.mark.parametrize(
    ("entity", "fields", "element"),
    [
        (EntityType.CUSTOMER, {"display_name": "x" * 501}, "DisplayName is 501 characters"),
        (EntityType.ITEM, {"name": "x" * 101, "income_account": "1"}, "Name is 101 characters"),
        (
            EntityType.INVOICE,
            {**invoice_fields(item=qbo_ref(EntityType.ITEM, "1")), "doc_number": "D" * 22},
            "DocNumber is 22 characters",
        ),
        (EntityType.CUSTOMER, {"display_name": " : \t"}, "requires a DisplayName"),
        (EntityType.CUSTOMER, {"display_name": "A", "email": "a@" + "b" * 100 + ".com"}, "PrimaryEmailAddr"),
    ],
)
def test_values_quickbooks_cannot_hold_are_rejected_not_truncated(entity, fields, element):
    with pytest.raises(RecordRejectedError, match=element):
        to_qbo_create(entity, fields, US)


def test_amounts_beyond_fifteen_digits_are_rejected():
    fields = invoice_fields(item=qbo_ref(EntityType.ITEM, "1"), amount=Decimal("12345678901234.56"))
    with pytest.raises(RecordRejectedError, match="15 digits"):
        to_qbo_create(EntityType.INVOICE, fields, US)


# --- inactivate, delete, void ------------------------------------------------------------------------------


def test_name_lists_are_inactivated_as_intuit_documents():
    expected = sample("customer_sparse_update_and_deactivate", "deactivate_request", "body")
    assert to_qbo_inactivate(EntityType.CUSTOMER, "2", 1) == expected
    assert to_qbo_inactivate(EntityType.ITEM, "4", "3") == {
        "Id": "4",
        "SyncToken": "3",
        "sparse": True,
        "Active": False,
    }
    with pytest.raises(ValueError, match="cannot inactivate"):
        to_qbo_inactivate(EntityType.INVOICE, "1", 0)


def test_transactions_are_deleted_and_voided_with_id_and_sync_token():
    assert to_qbo_delete(EntityType.INVOICE, "33", 3) == sample("invoice_delete", "request", "body")
    assert to_qbo_void(EntityType.INVOICE, "129", 0) == sample("invoice_void_request", "request", "body")
    assert to_qbo_void(EntityType.PAYMENT, "33", "1") == sample("payment_void", "request", "body")
    assert to_qbo_delete(EntityType.PAYMENT, "73", 0) == {"Id": "73", "SyncToken": "0"}
    with pytest.raises(ValueError, match="cannot delete"):
        to_qbo_delete(EntityType.CUSTOMER, "1", 0)
    with pytest.raises(ValueError, match="cannot void"):
        to_qbo_void(EntityType.ITEM, "1", 0)
    with pytest.raises(ValueError, match="SyncToken"):
        to_qbo_delete(EntityType.INVOICE, "1", "abc")
