"""Throttling per realm with a shortened minute: requests per minute, batch per minute, in flight."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle, running_emulator
from tests.emulator.conftest import Api

LIMITS = EmulatorConfig(
    minute_seconds=30.0, requests_per_minute=8, batch_requests_per_minute=2, max_in_flight=2
)


@pytest.fixture(scope="module")
def qbo() -> Iterator[EmulatorHandle]:
    with running_emulator(LIMITS) as handle:
        yield handle


@pytest.fixture(autouse=True)
def fresh_window(qbo: EmulatorHandle) -> None:
    qbo.reset_throttle()


def _assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429
    error = response.json()["Fault"]["Error"][0]
    assert response.json()["Fault"]["type"] == "SERVICE"
    assert error["code"] == "3001" and "ThrottleExceeded" in error["Message"]


def test_requests_per_minute_then_the_window_reopens() -> None:
    # A minute long enough that eleven requests fit in it on a busy machine.
    config = EmulatorConfig(minute_seconds=4.0, requests_per_minute=8)
    with running_emulator(config) as qbo:
        api = Api(qbo, qbo.connect().access_token)
        try:
            qbo.reset_throttle()
            answers = [api.get("/companyinfo/1").status_code for _ in range(10)]
            assert answers[:8] == [200] * 8
            assert answers[8:] == [429, 429]
            _assert_throttled(api.get("/companyinfo/1"))
            time.sleep(config.minute_seconds + 0.05)
            assert api.get("/companyinfo/1").status_code == 200
        finally:
            api.close()


def test_batch_requests_per_minute(api: Api) -> None:
    body = {"BatchItemRequest": [{"bId": "q", "Query": "select * from Account"}]}
    statuses = [api.post("/batch", body).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert api.get("/companyinfo/1").status_code == 200  # other calls still fit in the minute


def test_in_flight_limit(api: Api, qbo: EmulatorHandle) -> None:
    qbo.inject_fault("latency", count=2, delay=3.0)
    token = api.client.headers["Authorization"]

    def call() -> int:
        return httpx.get(f"{qbo.company_url}/companyinfo/1", headers={"Authorization": token}).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = [pool.submit(call) for _ in range(2)]
        # Both are in flight (held by the latency fault) before the third is sent, however busy the
        # machine is.
        deadline = time.monotonic() + 10
        while len(qbo.faults()["held"]) < 2:
            assert time.monotonic() < deadline, "the slow requests never arrived"
            time.sleep(0.01)
        third = api.get("/companyinfo/1")
        assert [f.result() for f in slow] == [200, 200]
    _assert_throttled(third)


def test_requests_per_second_when_enabled() -> None:
    config = EmulatorConfig(requests_per_second=3, minute_seconds=60.0)
    with running_emulator(config) as qbo:
        api = Api(qbo, qbo.connect().access_token)
        try:
            statuses = [api.get("/companyinfo/1").status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            time.sleep(1.05)
            assert api.get("/companyinfo/1").status_code == 200
        finally:
            api.close()
