"""The emulator answers as fast as it works: its server turns Nagle's algorithm off on each connection
(asyncio does so only for a listening socket made with IPPROTO_TCP), so a small answer is not held
back ~40 ms for the client's delayed acknowledgement. Every benchmark and latency figure rests on it."""

from __future__ import annotations

import time

from tests.emulator.conftest import Api


def test_twenty_reads_on_one_connection_take_far_less_than_forty_ms_each(api: Api) -> None:
    created = api.create("Customer", {"DisplayName": "Prompt Answers Ltd"})
    api.get(f"/customer/{created['Id']}")  # the connection is open and warm
    started = time.perf_counter()
    for _ in range(20):
        assert api.get(f"/customer/{created['Id']}").status_code == 200
    per_request = (time.perf_counter() - started) / 20
    assert per_request < 0.025, f"{per_request * 1000:.0f} ms a request: answers held back"
