"""Hosting companies: declared or added at run time, cheap while idle, kept across a restart, reachable from
another process, and refused when asked badly."""

from __future__ import annotations

import json
import threading
import tracemalloc
from pathlib import Path

import httpx
import pytest

from bench.emulator_proc import emulator_process
from connectors.quickbooks.emulator import CompanyConfig, Emulator, EmulatorConfig, running_emulator

#: What an idle company may cost (measured: about 4.6 KB on CPython 3.11).
IDLE_COMPANY_BYTES = 16 * 1024


def test_two_hundred_idle_companies_cost_little_memory_and_no_thread() -> None:
    threads = threading.active_count()
    tracemalloc.start()
    try:
        emulator = Emulator(EmulatorConfig())
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(199):
            emulator.add_company()
        per_company = (tracemalloc.get_traced_memory()[0] - before) / 199
    finally:
        tracemalloc.stop()
    assert len(emulator.companies) == 200
    assert per_company < IDLE_COMPANY_BYTES, per_company
    assert not any(company.opened for company in emulator.companies.values())
    assert threading.active_count() == threads
    last = list(emulator.companies.values())[-1]
    assert last.store.get("CompanyInfo", "1") is not None  # its records are made at first use
    assert last.opened and not emulator.default.opened


def test_declared_companies_are_numbered_after_the_default_and_keep_their_own_settings() -> None:
    config = EmulatorConfig(
        extra_companies=(
            CompanyConfig("555", company_name="Five", requests_per_minute=7, timezone_offset_hours=1),
        )
    )
    emulator = Emulator(config)
    five = emulator.companies["555"]
    assert (five.config.company_name, five.config.requests_per_minute, five.config.client_id) == (
        "Five",
        7,
        config.client_id,
    )
    assert five.ctx.stamp().endswith("+01:00") and emulator.ctx.stamp().endswith("-08:00")
    assert emulator.default.config.requests_per_minute == 500
    assert list(Emulator(EmulatorConfig().with_companies(3)).companies) == [
        "9341455600000001",
        "9341455600000002",
        "9341455600000003",
    ]
    with pytest.raises(ValueError, match="declared twice"):
        Emulator(EmulatorConfig(extra_companies=(CompanyConfig(config.realm_id),)))


def test_bad_company_requests_are_refused_with_a_reason() -> None:
    with running_emulator() as qbo:
        control = qbo.base_url + "/_emulator/companies"
        assert httpx.post(control, json={"realm_id": qbo.realm_id}).status_code == 400  # hosted already
        unknown = httpx.post(control, json={"colour": "blue"})
        assert unknown.status_code == 400 and "colour" in unknown.json()["error"]
        assert httpx.post(control, json={"realm_id": "a/b"}).status_code == 400
        missing = httpx.get(control + "/777/records/Customer")
        assert missing.status_code == 404 and "777" in missing.json()["error"]
        added = httpx.post(control, json={"realm_id": "777", "max_in_flight": 2}).json()
        assert added["company_url"] == qbo.api_base + "/company/777"
        assert httpx.get(control + "/777/records/Customer").json() == {"Customer": []}


def test_companies_added_at_run_time_and_their_data_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "qbo.json"
    with running_emulator(EmulatorConfig(state_file=state)) as first:
        added = first.add_company("8080", company_name="Kept", requests_per_minute=9)
        tokens = added.connect()
        saved = added.create_record("Customer", {"DisplayName": "Survivor"})
        idle = first.add_company()
    with running_emulator(EmulatorConfig(state_file=state)) as second:
        assert [c["realm_id"] for c in second.companies()] == [second.realm_id, "8080", idle.realm_id]
        kept = second.company_handle("8080")
        assert kept.read_record("Customer", saved["Id"])["DisplayName"] == "Survivor"
        assert kept.info()["company_name"] == "Kept"
        answer = httpx.get(
            f"{kept.company_url}/customer/{saved['Id']}",
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
        assert answer.status_code == 200
        assert second.list_records("Customer") == []  # the default company has none of them


def test_a_state_file_of_one_company_still_loads(tmp_path: Path) -> None:
    state = tmp_path / "old.json"
    with running_emulator(EmulatorConfig(state_file=state)) as first:
        saved = first.create_record("Customer", {"DisplayName": "From Version 1"})
    document = json.loads(state.read_text())
    (company,) = document["companies"]
    version_1 = {
        "version": 1,
        "realm_id": company["settings"]["realm_id"],
        "now": document["now"],
        "oauth": document["oauth"],
        **{key: company[key] for key in ("rows", "tombstones", "counters", "replays")},
    }
    state.write_text(json.dumps(version_1))
    with running_emulator(EmulatorConfig(state_file=state)) as second:
        assert second.read_record("Customer", saved["Id"])["DisplayName"] == "From Version 1"


def test_the_bench_process_hosts_k_companies_and_hands_out_each_one() -> None:
    with emulator_process(EmulatorConfig(), companies=5) as qbo:
        handles = qbo.company_handles()
        assert [h.realm_id for h in handles][:2] == [qbo.realm_id, "9341455600000002"]
        assert len({h.company_url for h in handles}) == 5
        last = handles[-1]
        token = last.connect().access_token
        created = last.create_record("Customer", {"DisplayName": "Far Away"})
        copies = qbo.clone("Customer", created["Id"], ["Copy One"], age_seconds=60, realm=last.realm_id)
        answer = httpx.get(
            f"{last.company_url}/customer/{copies[0]}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        assert answer.json()["Customer"]["DisplayName"] == "Copy One"
        assert qbo.list_records("Customer") == []


def test_the_emulator_command_hosts_the_companies_it_is_told(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from engine.web.serve import free_port

    port = free_port()
    script = Path(sys.executable).with_name("ledgersync")
    command = [str(script), "emulator", "--port", str(port), "--companies", "3", "--company-picker"]
    with (tmp_path / "emulator.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/_emulator/companies", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "emulator.log"
                ).read_text()
                time.sleep(0.1)
        realms = [c["realm_id"] for c in answer.json()["companies"]]
        assert realms == ["9341455600000001", "9341455600000002", "9341455600000003"]
        params = {
            "client_id": "emulator-client-id",
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": "http://localhost/cb",
            "state": "s",
        }
        picker = httpx.get(f"http://127.0.0.1:{port}/connect/oauth2", params=params, timeout=5)
        assert all(realm in picker.text for realm in realms), picker.text[:500]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "9341455600000001, 9341455600000002, 9341455600000003" in (tmp_path / "emulator.log").read_text()
