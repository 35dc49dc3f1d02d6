"""Entity behaviour: CRUD, versions, required fields, references, computed fields and QuickBooks' faults."""

from __future__ import annotations

import uuid

import httpx
import pytest

from connectors.quickbooks.emulator import EmulatorHandle
from tests.emulator.conftest import Api, fault_code


def test_every_response_carries_an_intuit_tid_and_a_company_local_time(api: Api) -> None:
    response = api.get("/companyinfo/" + api.qbo.realm_id)
    assert response.status_code == 200
    assert response.headers["intuit_tid"]
    assert response.json()["CompanyInfo"]["CompanyName"]
    assert response.json()["time"].endswith("-08:00")
    assert api.get("/customer/999999").headers["intuit_tid"]


def test_the_seeded_company_has_income_undeposited_funds_and_us_tax_codes(api: Api) -> None:
    accounts = api.query("select * from Account").json()["QueryResponse"]["Account"]
    types = {a["AccountSubType"] for a in accounts}
    assert {"SalesOfProductIncome", "UndepositedFunds"} <= types
    codes = api.query("select * from TaxCode").json()["QueryResponse"]["TaxCode"]
    assert {c["Id"] for c in codes} == {"TAX", "NON"}


def test_create_read_and_sparse_update_bump_the_sync_token(api: Api) -> None:
    created = api.create("Customer", {"DisplayName": "Sparse Co", "Notes": "first", "CompanyName": "Sparse"})
    assert created["SyncToken"] == "0"
    assert created["MetaData"]["CreateTime"] == created["MetaData"]["LastUpdatedTime"]
    updated = api.post(
        "/customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "second"}
    ).json()["Customer"]
    assert updated["SyncToken"] == "1"
    assert updated["Notes"] == "second"
    assert updated["CompanyName"] == "Sparse"
    assert api.get(f"/customer/{created['Id']}").json()["Customer"] == updated


def test_full_update_sets_omitted_writable_fields_to_null(api: Api) -> None:
    created = api.create("Customer", {"DisplayName": "Full Co", "Notes": "keep?", "CompanyName": "Full"})
    full = api.post("/customer", {"Id": created["Id"], "SyncToken": "0", "DisplayName": "Full Co"}).json()
    assert "Notes" not in full["Customer"]
    assert "CompanyName" not in full["Customer"]


def test_a_stale_sync_token_is_fault_5010(api: Api) -> None:
    created = api.create("Customer", {"DisplayName": "Stale Co"})
    api.post("/customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "a"})
    stale = api.post("/customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "b"})
    assert stale.status_code == 400
    assert fault_code(stale) == "5010"
    assert stale.json()["Fault"]["type"] == "ValidationFault"


def test_display_names_are_unique_across_customers_vendors_and_employees(api: Api) -> None:
    vendor = api.create("Vendor", {"DisplayName": "Shared Name"})
    clash = api.post("/customer", {"DisplayName": "shared name"})
    assert fault_code(clash) == "6240"
    assert (
        clash.json()["Fault"]["Error"][0]["Detail"]
        == f"The name supplied already exists. : Id={vendor['Id']}"
    )
    inactive = api.create("Employee", {"GivenName": "Ina", "FamilyName": "Active"})
    api.post("/employee", {"Id": inactive["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    assert fault_code(api.post("/customer", {"DisplayName": "Ina Active"})) == "6240"


@pytest.mark.parametrize(
    ("entity", "body", "code", "element"),
    [
        ("invoice", {"CustomerRef": {"value": "1"}}, "2020", "Line"),
        ("invoice", {"Line": [{"DetailType": "SalesItemLineDetail", "Amount": 1}]}, "2020", "CustomerRef"),
        ("item", {"Name": "No Income", "Type": "Service"}, "2020", "IncomeAccountRef"),
        ("item", {"Name": "No Income Inv", "Type": "Inventory"}, "2020", "IncomeAccountRef"),
        ("customer", {"Notes": "no name"}, "2020", "DisplayName"),
        ("payment", {"CustomerRef": {"value": "1"}}, "6000", ""),
        ("item", {"Name": "Bad Type", "Type": "Gadget"}, "2170", ""),
    ],
)
def test_missing_or_bad_fields_get_quickbooks_faults(
    api: Api, entity: str, body: dict[str, object], code: str, element: str
) -> None:
    holder = api.qbo.create_record("Customer", {"DisplayName": f"Ref Holder {uuid.uuid4()}"})
    if "CustomerRef" in body:
        body = {**body, "CustomerRef": {"value": holder["Id"]}}
    response = api.post(f"/{entity}", body)
    assert response.status_code == 400
    assert fault_code(response) == code
    assert response.json()["Fault"]["Error"][0]["element"] == element


def test_unknown_and_inactive_references_are_2500_and_610(api: Api) -> None:
    unknown = api.post("/item", {"Name": "Ghost", "Type": "Service", "IncomeAccountRef": {"value": "999"}})
    assert fault_code(unknown) == "2500"
    gone = api.create("Customer", {"DisplayName": "Gone Customer"})
    api.post("/customer", {"Id": gone["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    item = api.create("Item", {"Name": "Any Service", "Type": "Service", "IncomeAccountRef": {"value": "2"}})
    line = {
        "DetailType": "SalesItemLineDetail",
        "Amount": 5,
        "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}},
    }
    inactive = api.post("/invoice", {"CustomerRef": {"value": gone["Id"]}, "Line": [line]})
    assert fault_code(inactive) == "610"


def test_unknown_ids_are_610_object_not_found(api: Api) -> None:
    response = api.get("/customer/424242")
    assert response.status_code == 400
    assert fault_code(response) == "610"
    assert fault_code(api.post("/customer", {"Id": "424242", "SyncToken": "0", "DisplayName": "x"})) == "610"


@pytest.fixture(scope="module")
def service_item(api: Api) -> dict[str, object]:
    return api.create("Item", {"Name": "Consulting", "Type": "Service", "IncomeAccountRef": {"value": "2"}})


def _invoice(api: Api, customer_id: str, item_id: str, *amounts: float) -> dict[str, object]:
    lines = [
        {
            "DetailType": "SalesItemLineDetail",
            "Amount": a,
            "SalesItemLineDetail": {"ItemRef": {"value": item_id}},
        }
        for a in amounts
    ]
    return api.create("Invoice", {"CustomerRef": {"value": customer_id}, "Line": lines})


def test_invoices_get_computed_totals_lines_and_numbers(api: Api, service_item: dict[str, str]) -> None:
    customer = api.create("Customer", {"DisplayName": "Invoice Co"})
    invoice = _invoice(api, customer["Id"], service_item["Id"], 100.0, 23.5)
    assert invoice["TotalAmt"] == 123.5
    assert invoice["Balance"] == 123.5
    lines = invoice["Line"]
    assert [ln.get("LineNum") for ln in lines[:2]] == [1, 2]
    assert lines[-1] == {"DetailType": "SubTotalLineDetail", "Amount": 123.5, "SubTotalLineDetail": {}}
    assert lines[0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    assert invoice["DocNumber"] and invoice["TxnDate"] and invoice["DueDate"]
    assert invoice["CustomerRef"] == {"value": customer["Id"], "name": "Invoice Co"}
    second = _invoice(api, customer["Id"], service_item["Id"], 1.0)
    assert int(second["DocNumber"]) == int(invoice["DocNumber"]) + 1


def test_a_payment_lowers_the_invoice_balance_and_links_both(api: Api, service_item: dict[str, str]) -> None:
    customer = api.create("Customer", {"DisplayName": "Payer Co"})
    invoice = _invoice(api, customer["Id"], service_item["Id"], 71.0)
    payment = api.create(
        "Payment",
        {
            "TotalAmt": 65.0,
            "CustomerRef": {"value": customer["Id"]},
            "Line": [{"Amount": 55.0, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    assert payment["UnappliedAmt"] == 10.0
    assert payment["DepositToAccountRef"]["value"] == "4"
    after = api.get(f"/invoice/{invoice['Id']}").json()["Invoice"]
    assert after["Balance"] == 16.0
    assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert after["SyncToken"] == "1"
    voided = api.post(
        "/payment",
        {"Id": payment["Id"], "SyncToken": "0", "sparse": True},
        operation="update",
        include="void",
    ).json()["Payment"]
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"] == "Voided"
    assert api.get(f"/invoice/{invoice['Id']}").json()["Invoice"]["Balance"] == 71.0


def test_transactions_delete_and_void_but_name_lists_do_not_delete(
    api: Api, service_item: dict[str, str]
) -> None:
    customer = api.create("Customer", {"DisplayName": "Deleter Co"})
    doomed = _invoice(api, customer["Id"], service_item["Id"], 10.0)
    deleted = api.post("/invoice", {"Id": doomed["Id"], "SyncToken": "0"}, operation="delete").json()
    assert deleted["Invoice"] == {"status": "Deleted", "domain": "QBO", "Id": doomed["Id"]}
    gone = api.get(f"/invoice/{doomed['Id']}")
    assert fault_code(gone) == "610"
    assert "deleted this transaction" in gone.json()["Fault"]["Error"][0]["Detail"]
    voidable = _invoice(api, customer["Id"], service_item["Id"], 10.0)
    voided = api.post("/invoice", {"Id": voidable["Id"], "SyncToken": "0"}, operation="void").json()[
        "Invoice"
    ]
    assert (voided["TotalAmt"], voided["Balance"], voided["PrivateNote"], voided["SyncToken"]) == (
        0,
        0,
        "Voided",
        "1",
    )
    refused = api.post("/customer", {"Id": customer["Id"], "SyncToken": "0"}, operation="delete")
    assert refused.status_code == 400 and fault_code(refused) == "500"


def test_requestid_replays_the_first_response_instead_of_writing_twice(api: Api) -> None:
    first = api.post("/customer", {"DisplayName": "Once Only"}, requestid="op-123")
    again = api.post("/customer", {"DisplayName": "Once Only"}, requestid="op-123")
    assert again.status_code == 200
    assert again.content == first.content
    count = api.query("select count(*) from Customer where DisplayName = 'Once Only'").json()
    assert count["QueryResponse"]["totalCount"] == 1
    too_long = api.post("/customer", {"DisplayName": "Long Id"}, requestid="x" * 51)
    assert fault_code(too_long) == "6000"


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"{not json", "2010"), (b"\xff\xfe\x00", "500"), (b"[1, 2]", "2010"), (b'{"DisplayName": ""}', "2020")],
)
def test_malformed_bodies_get_faults_never_a_500(api: Api, content: bytes, code: str) -> None:
    response = api.client.post("/customer", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert fault_code(response) == code


def test_unknown_resources_and_other_realms_are_refused(api: Api, qbo: EmulatorHandle) -> None:
    unknown = api.get("/gizmo/1")
    assert unknown.status_code == 400 and fault_code(unknown) == "10000"
    token = api.client.headers["Authorization"]
    other = httpx.get(f"{qbo.api_base}/company/123/customer/1", headers={"Authorization": token})
    assert other.status_code == 403 and fault_code(other) == "3100"


def test_any_minorversion_behaves_as_75(api: Api) -> None:
    old = api.client.get("/companyinfo/1", params={"minorversion": "4"})
    none = api.client.get("/companyinfo/1", params={})
    assert old.status_code == none.status_code == 200
    assert old.json()["CompanyInfo"] == none.json()["CompanyInfo"]
