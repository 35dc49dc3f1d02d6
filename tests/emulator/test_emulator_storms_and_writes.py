"""Fault-campaign knobs: 429 storms and 5xx bursts for a while, requests held for a test to act on,
what fired counted by kind, every record listed, and the request log telling which writes changed
nothing (an echo: a client restating what QuickBooks already had)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from connectors.quickbooks.emulator import EmulatorHandle
from tests.emulator.conftest import Api, fault_code


@pytest.fixture(autouse=True)
def clean(qbo: EmulatorHandle) -> None:
    qbo.clear_faults()
    qbo.clear_request_log()


def statuses(api: Api, n: int) -> list[int]:
    return [api.get("/companyinfo/1").status_code for _ in range(n)]


def test_a_429_storm_answers_throttled_for_its_seconds_then_stops(api: Api, qbo: EmulatorHandle) -> None:
    before = qbo.faults()["fired"].get("rate_limit", 0)
    qbo.inject_fault("rate_limit", seconds=0.4)
    storm = [api.get("/companyinfo/1") for _ in range(5)]
    assert [r.status_code for r in storm] == [429] * 5
    assert fault_code(storm[0]) == "3001" and storm[0].json()["Fault"]["type"] == "SERVICE"
    assert qbo.faults()["armed"][0]["seconds_left"] > 0
    time.sleep(0.45)
    assert statuses(api, 2) == [200, 200]
    assert qbo.faults()["armed"] == []
    assert qbo.faults()["fired"]["rate_limit"] == before + 5


def test_a_counted_429_burst_and_a_timed_5xx_burst(api: Api, qbo: EmulatorHandle) -> None:
    qbo.inject_fault("rate_limit", count=2)
    assert statuses(api, 3) == [429, 429, 200]
    qbo.inject_fault("server_error", status=502, seconds=0.3)
    assert statuses(api, 3) == [502, 502, 502]
    time.sleep(0.35)
    assert statuses(api, 1) == [200]


def test_storm_seconds_must_be_positive(qbo: EmulatorHandle) -> None:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        qbo.inject_fault("rate_limit", seconds=0)
    assert refused.value.response.json() == {"error": "seconds must be more than 0"}


def test_a_request_held_after_commit_is_listed_with_its_client_until_answered(
    api: Api, qbo: EmulatorHandle
) -> None:
    qbo.inject_fault("timeout_after_commit", delay=0.6, path_contains="/customer")
    answers: list[int] = []
    writer = threading.Thread(
        target=lambda: answers.append(api.post("/customer", {"DisplayName": "Held Back"}).status_code)
    )
    writer.start()
    deadline = time.monotonic() + 5
    while not qbo.faults()["held"] and time.monotonic() < deadline:
        time.sleep(0.01)
    (held,) = qbo.faults()["held"]
    assert held["kind"] == "timeout_after_commit" and held["path"].endswith("/customer")
    host, port = held["client"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    names = [c["DisplayName"] for c in qbo.list_records("Customer")]
    assert "Held Back" in names, "the write is committed while its answer is held"
    writer.join(timeout=5)
    assert answers == [200] and qbo.faults()["held"] == []


def test_the_request_log_names_what_each_write_changed(api: Api, qbo: EmulatorHandle) -> None:
    created = api.create("Customer", {"DisplayName": "Logged Writes", "Notes": "first"})
    changed = api.post(
        "/customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "second"}
    ).json()["Customer"]
    restated = {"Id": created["Id"], "SyncToken": changed["SyncToken"], "sparse": True, "Notes": "second"}
    echo = api.post("/customer", restated)
    assert echo.status_code == 200 and echo.json()["Customer"]["SyncToken"] == "2"
    replayed = [api.post("/customer", {"DisplayName": "Replayed Once"}, requestid="r-1") for _ in range(2)]
    assert replayed[0].json()["Customer"]["Id"] == replayed[1].json()["Customer"]["Id"]
    api.get(f"/customer/{created['Id']}")

    log = qbo.request_log(entries=True)
    writes = [(e["record"], e["changed"], e["replayed"]) for e in log["entries"] if e["method"] == "POST"]
    record = f"Customer {created['Id']}"
    assert writes[0][0] == record and {"DisplayName", "Notes", "Id"} <= set(writes[0][1])
    assert writes[1:3] == [(record, ["Notes"], False), (record, [], False)]
    assert writes[4] == (None, None, True)
    assert log["entries"][-1]["changed"] is None, "a read changes nothing and is no write"
    assert log["unchanged_writes"] == 1


def test_every_record_is_listed_inactive_ones_included(api: Api, qbo: EmulatorHandle) -> None:
    gone = api.create("Customer", {"DisplayName": "Listed Then Inactive"})
    qbo.delete_record("Customer", gone["Id"])
    listed = {c["Id"]: c for c in qbo.list_records("Customer")}
    assert listed[gone["Id"]]["Active"] is False
    assert api.query("select count(*) from Customer").json()["QueryResponse"]["totalCount"] < len(listed)
