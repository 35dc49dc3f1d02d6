"""CDC (window, cap, tombstones, empty shape) and batch (size cap, per-item faults, isolation, replay)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle, running_emulator
from tests.emulator.conftest import Api, fault_code


@pytest.fixture(scope="module")
def qbo() -> Iterator[EmulatorHandle]:
    with running_emulator(EmulatorConfig(cdc_max_objects=5, batch_max_items=30)) as handle:
        yield handle


def _cdc(api: Api, since: str, entities: str = "Customer,Invoice") -> Any:
    return api.get("/cdc", entities=entities, changedSince=since)


def test_cdc_returns_changes_and_deleted_rows_as_tombstones(api: Api) -> None:
    since = api.qbo.advance_clock(5)["now"]
    customer = api.create("Customer", {"DisplayName": "CDC One"})
    item = api.create("Item", {"Name": "CDC Item", "Type": "Service", "IncomeAccountRef": {"value": "2"}})
    line = {
        "DetailType": "SalesItemLineDetail",
        "Amount": 5,
        "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}},
    }
    invoice = api.create("Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [line]})
    api.post("/invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="delete")
    body = _cdc(api, since).json()
    responses = body["CDCResponse"][0]["QueryResponse"]
    by_entity = {next(k for k in r if k not in ("startPosition", "maxResults")): r for r in responses}
    assert [c["DisplayName"] for c in by_entity["Customer"]["Customer"]] == ["CDC One"]
    tombstone = by_entity["Invoice"]["Invoice"][0]
    assert tombstone["status"] == "Deleted" and tombstone["Id"] == invoice["Id"]
    assert set(tombstone) == {"domain", "status", "Id", "MetaData"}


def test_cdc_with_no_changes_has_quickbooks_empty_shape(api: Api) -> None:
    since = api.qbo.advance_clock(5)["now"]
    assert _cdc(api, since).json()["CDCResponse"] == [{"QueryResponse": [{}]}]


def test_cdc_refuses_windows_older_than_30_days_and_unsupported_entities(api: Api) -> None:
    since = api.qbo.advance_clock(0)["now"]
    api.qbo.advance_clock(31 * 86400)
    api.client.headers["Authorization"] = f"Bearer {api.qbo.connect().access_token}"  # the old one expired
    too_old = _cdc(api, since)
    assert too_old.status_code == 400
    assert "older than fixed days" in too_old.json()["Fault"]["Error"][0]["Detail"]
    assert _cdc(api, api.qbo.advance_clock(0)["now"], "TaxCode").status_code == 400
    assert fault_code(api.get("/cdc", entities="Customer")) == "2020"
    assert _cdc(api, "yesterday-ish").status_code == 400


def test_cdc_caps_the_objects_of_one_response(api: Api) -> None:
    since = api.qbo.advance_clock(5)["now"]
    for n in range(7):
        api.qbo.create_record("Customer", {"DisplayName": f"Capped {n}"})
    customers = _cdc(api, since, "Customer").json()["CDCResponse"][0]["QueryResponse"][0]["Customer"]
    assert [c["DisplayName"] for c in customers] == [f"Capped {n}" for n in range(5)]


def _batch(api: Api, items: list[dict[str, Any]], **params: str) -> Any:
    return api.post("/batch", {"BatchItemRequest": items}, **params)


def test_batch_answers_each_item_by_bid_with_faults_inside_a_200(api: Api) -> None:
    existing = api.create("Customer", {"DisplayName": "Batch Existing"})
    response = _batch(
        api,
        [
            {"bId": "b1", "operation": "create", "Customer": {"DisplayName": "Batch New"}},
            {"bId": "b2", "operation": "create", "Customer": {"DisplayName": "Batch Existing"}},
            {
                "bId": "b3",
                "operation": "update",
                "Customer": {"Id": existing["Id"], "SyncToken": "7", "sparse": True},
            },
            {"bId": "b4", "Query": "select * from Customer where DisplayName = 'Batch Existing'"},
        ],
    )
    assert response.status_code == 200
    items = {item["bId"]: item for item in response.json()["BatchItemResponse"]}
    assert items["b1"]["Customer"]["DisplayName"] == "Batch New"
    assert items["b2"]["Fault"]["Error"][0]["code"] == "6240"
    assert items["b3"]["Fault"]["Error"][0]["code"] == "5010"
    assert items["b4"]["QueryResponse"]["Customer"][0]["Id"] == existing["Id"]


def test_batch_items_cannot_see_each_other(api: Api) -> None:
    response = _batch(
        api,
        [
            {"bId": "c1", "operation": "create", "Customer": {"DisplayName": "Invisible"}},
            {"bId": "c2", "Query": "select * from Customer where DisplayName = 'Invisible'"},
        ],
    )
    items = {item["bId"]: item for item in response.json()["BatchItemResponse"]}
    assert items["c2"]["QueryResponse"] == {}
    assert api.query("select * from Customer where DisplayName = 'Invisible'").json()["QueryResponse"][
        "Customer"
    ]


def test_batch_size_is_capped_at_30(api: Api) -> None:
    items = [{"bId": f"x{n}", "Query": "select * from Account"} for n in range(31)]
    response = _batch(api, items)
    assert response.status_code == 400 and fault_code(response) == "6000"
    assert _batch(api, items[:30]).status_code == 200


def test_batch_requestid_replays_only_with_the_same_bids(api: Api) -> None:
    items = [{"bId": "r1", "operation": "create", "Customer": {"DisplayName": "Replay Batch"}}]
    first = _batch(api, items, requestid="batch-1")
    assert _batch(api, items, requestid="batch-1").content == first.content
    renamed = _batch(api, [{**items[0], "bId": "r2"}], requestid="batch-1")
    assert renamed.json()["BatchItemResponse"][0]["Fault"]["Error"][0]["code"] == "6240"
    assert fault_code(_batch(api, items, requestid="y" * 37)) == "6000"
    assert fault_code(_batch(api, [{**items[0], "bId": "b" * 11}], requestid="batch-2")) == "6000"
