"""The QuickBooks client against the emulator: every call pinned and JSON, requestid on every write,
faults mapped, 429 storms and 5xx bursts and timeouts after commit end with each write applied once."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.quickbooks.budget import MemoryRateBudget
from connectors.quickbooks.emulator import EmulatorConfig
from engine.errors import (
    DuplicateNameError,
    RateLimitedError,
    RecordRejectedError,
    UpstreamUnavailableError,
    VersionConflictError,
)
from tests.quickbooks.conftest import Rig


def test_every_call_pins_minorversion_asks_for_json_and_every_write_carries_the_op_id(rig: Rig):
    sent: list[httpx.Request] = []
    http = rig.new_http()
    http.event_hooks["request"].append(sent.append)
    rig.connect("c1")
    client = rig.client("c1", http=http)
    customer = client.create("Customer", {"DisplayName": "Ann"}, "op-create")
    client.update(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "n"}, "op-update"
    )
    client.read("Customer", customer["Id"])
    client.query("select * from Customer")
    client.cdc(["Customer"], datetime.now(UTC) - timedelta(days=1))
    assert len(sent) == 5
    for request in sent:
        assert request.url.params["minorversion"] == "75"
        assert request.headers["accept"] == "application/json"
    assert [r.url.params.get("requestid") for r in sent] == ["op-create", "op-update", None, None, None]


def test_reads_queries_cdc_and_batches_are_metered_and_writes_are_not(rig: Rig):
    rig.connect("c1")
    client = rig.client("c1")
    customer = client.create("Customer", {"DisplayName": "Ann"}, "op-1")
    client.update("Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "x"}, "op-2")
    assert client.read("Customer", customer["Id"])["Notes"] == "x"
    assert [c["DisplayName"] for c in client.query("select * from Customer")] == ["Ann"]
    assert client.count("select count(*) from Customer") == 1
    changes = client.cdc(["Customer", "Invoice"], datetime.now(UTC) - timedelta(days=1))
    assert [c["Id"] for c in changes["Customer"]] == [customer["Id"]] and changes["Invoice"] == []
    answers = client.batch(
        [
            {"bId": "q", "Query": "select * from Customer"},
            {"bId": "c", "operation": "create", "Customer": {"DisplayName": "Bob"}},
        ],
        "batch-1",
    )
    assert answers["c"]["Customer"]["DisplayName"] == "Bob"
    assert answers["q"]["QueryResponse"]["Customer"][0]["DisplayName"] == "Ann"
    counts = rig.budget.metered_reads(rig.qbo.realm_id)
    assert counts == {"read": 1, "query": 2, "cdc": 1, "batch": 1, "total": 5}
    assert counts["total"] == rig.qbo.request_log()["metered"]


def test_quickbooks_faults_become_the_engine_errors_with_the_intuit_tid(rig: Rig):
    rig.connect("c1")
    client = rig.client("c1")
    ann = client.create("Customer", {"DisplayName": "Ann"}, "op-1")
    with pytest.raises(DuplicateNameError) as duplicate:
        client.create("Customer", {"DisplayName": "ann"}, "op-2")
    assert duplicate.value.existing_id == ann["Id"] and duplicate.value.tid
    client.update("Customer", {"Id": ann["Id"], "SyncToken": "0", "sparse": True, "Notes": "1"}, "op-3")
    with pytest.raises(VersionConflictError):
        client.update("Customer", {"Id": ann["Id"], "SyncToken": "0", "sparse": True, "Notes": "2"}, "op-4")
    with pytest.raises(RecordRejectedError) as rejected:
        client.create("Invoice", {"Line": []}, "op-5")
    assert rejected.value.code == "2020"


def test_a_repeated_request_id_does_not_write_twice(rig: Rig):
    rig.connect("c1")
    client = rig.client("c1")
    first = client.create("Customer", {"DisplayName": "Once"}, "op-once")
    again = client.create("Customer", {"DisplayName": "Once"}, "op-once")
    assert again == first and rig.count() == 1


def test_a_burst_of_5xx_is_retried_with_backoff_and_the_same_requestid(rig: Rig):
    sent: list[httpx.Request] = []
    http = rig.new_http()
    http.event_hooks["request"].append(sent.append)
    rig.connect("c1")
    client = rig.client("c1", http=http)
    rig.qbo.inject_fault("server_error", count=3, status=503)
    client.create("Customer", {"DisplayName": "Ann"}, "op-ann")
    assert [r.url.params["requestid"] for r in sent] == ["op-ann"] * 4
    assert len(rig.slept) == 3 and rig.count() == 1

    rig.qbo.inject_fault("server_error", count=10, status=500)
    with pytest.raises(UpstreamUnavailableError) as caught:
        client.create("Customer", {"DisplayName": "Bob"}, "op-bob")
    assert caught.value.tid
    rig.qbo.clear_faults()
    client.create("Customer", {"DisplayName": "Bob"}, "op-bob")  # the runner's later retry
    assert rig.count() == 2


def test_a_5xx_burst_waits_as_engine_backoff_says_between_attempts(qbo, sqlite_store):
    with ExitStack() as stack:
        rig = Rig(qbo, sqlite_store, stack, backoff_base_seconds=0.5, backoff_max_seconds=1.5)
        rig.connect("c1")
        client = rig.client("c1", rand=lambda: 0.0)
        rig.qbo.inject_fault("server_error", count=3, status=503)
        client.create("Customer", {"DisplayName": "Ann"}, "op-ann")
    assert rig.slept == [0.25, 0.5, 0.75]  # half of 0.5, 1.0, then the 1.5 cap


def test_a_timeout_after_quickbooks_committed_is_retried_without_a_duplicate(qbo, sqlite_store):
    with ExitStack() as stack:
        rig = Rig(qbo, sqlite_store, stack, timeout_seconds=0.5)
        rig.connect("c1")
        client = rig.client("c1")
        qbo.inject_fault("timeout_after_commit", delay=1.5, path_contains="/customer")
        created = client.create("Customer", {"DisplayName": "Slow"}, "op-slow")
        assert created["DisplayName"] == "Slow"
        assert rig.count() == 1 and len(rig.slept) == 1


@pytest.mark.parametrize(
    "emulator_config", [EmulatorConfig(requests_per_minute=8, minute_seconds=0.4, max_in_flight=3)]
)
def test_a_429_storm_and_5xx_bursts_end_with_every_create_applied_exactly_once(qbo, sqlite_store):
    """Our budget is set far above what the emulator allows, so the emulator throttles for real."""
    with ExitStack() as stack:
        rig = Rig(
            qbo,
            sqlite_store,
            stack,
            throttle_penalty_seconds=0.4,
            throttle_retries=50,
            server_error_retries=10,
        )
        rig.connect("c1")
        clients = [rig.client("c1", http=rig.new_http(), sleep=time.sleep) for _ in range(4)]
        qbo.inject_fault("server_error", count=6, status=503)
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                for n in range(6):
                    clients[index].create("Customer", {"DisplayName": f"C{index}-{n}"}, f"op-{index}-{n}")
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        log = qbo.request_log()
        assert log["by_status"].get("429", 0) > 0 and log["by_status"].get("503", 0) == 6
        names = sorted(row.data["DisplayName"] for row in qbo.emulator.store.all("Customer"))
        assert names == sorted(f"C{i}-{n}" for i in range(4) for n in range(6))


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(requests_per_minute=1)])
def test_throttling_that_does_not_end_surfaces_as_rate_limited_with_the_wait(qbo, sqlite_store):
    with ExitStack() as stack:
        rig = Rig(qbo, sqlite_store, stack, throttle_retries=2)
        now = [0.0]
        waits: list[float] = []

        def sleep(seconds: float) -> None:  # the budget waits out the penalty at no cost
            waits.append(seconds)
            now[0] += seconds

        rig.budget = MemoryRateBudget(rig.settings, sleep=sleep, clock=lambda: now[0])
        rig.connect("c1")
        client = rig.client("c1")
        client.query("select * from Customer")
        with pytest.raises(RateLimitedError) as caught:
            client.query("select * from Customer")
        assert caught.value.retry_after == 60.0
        assert waits == [60.0, 60.0]  # the realm is held after each 429
        assert rig.qbo.request_log()["by_status"]["429"] == 3


def test_a_token_for_another_company_403_parks_the_connection(rig: Rig):
    from engine.errors import NeedsReauthorizationError
    from engine.state import ConnectionStatus

    rig.connect("c1")
    client = rig.client("c1")
    client.realm_id = "1234"  # the grant is for another company: 403 (3100)
    with pytest.raises(NeedsReauthorizationError):
        client.query("select * from Customer")
    with rig.store.session() as session:
        parked = session.get_connection("c1")
    assert parked is not None and parked.status is ConnectionStatus.NEEDS_REAUTH
