"""Several companies in one emulator: each realm's records, limits, faults, tokens and webhooks are apart."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.quickbooks.emulator import CompanyConfig, CompanyHandle, EmulatorConfig, EmulatorHandle
from connectors.quickbooks.emulator import running_emulator as running
from tests.emulator.conftest import FAST, Api, fault_code
from tests.emulator.test_emulator_faults_webhooks import Receiver

DECLARED = "4620816365000000002"


@pytest.fixture(scope="module")
def qbo() -> Iterator[EmulatorHandle]:
    with running(replace(FAST, extra_companies=(CompanyConfig(DECLARED),))) as handle:
        yield handle


@pytest.fixture(scope="module")
def other(qbo: EmulatorHandle) -> CompanyHandle:
    """A company added at run time, next to the default one and the declared one."""
    return qbo.add_company(company_name="Other Books")


def _api(company: CompanyHandle) -> Api:
    return Api(company, company.connect().access_token)


def test_every_company_is_listed_with_its_own_realm_and_address(
    qbo: EmulatorHandle, other: CompanyHandle
) -> None:
    listed = {c["realm_id"]: c for c in qbo.companies()}
    assert list(listed)[:2] == [qbo.realm_id, DECLARED]
    assert listed[other.realm_id]["company_url"] == other.company_url
    assert listed[other.realm_id]["company_name"] == "Other Books"
    assert other.realm_id not in (qbo.realm_id, DECLARED)


def test_consent_picks_the_company_named_by_the_realm_hint(qbo: EmulatorHandle, other: CompanyHandle) -> None:
    assert other.connect().realm_id == other.realm_id
    assert qbo.company_handle(DECLARED).connect().realm_id == DECLARED
    params = {
        "client_id": qbo.client_id,
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
        "redirect_uri": "http://localhost/cb",
    }
    unhinted = httpx.get(qbo.base_url + "/connect/oauth2", params=params)
    assert "realmId=" + qbo.realm_id in unhinted.headers["location"]  # no hint: the first company
    unknown = httpx.get(qbo.base_url + "/connect/oauth2", params={**params, "realm": "404"})
    assert unknown.status_code == 400 and "location" not in unknown.headers


def test_the_optional_picker_page_lets_a_person_choose_the_company() -> None:
    with running(EmulatorConfig(company_picker=True, company_name="Main & Co")) as qbo:
        params = {
            "client_id": qbo.client_id,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": "http://localhost/cb",
            "state": "s",
        }
        alone = httpx.get(qbo.base_url + "/connect/oauth2", params=params)
        assert alone.status_code == 302  # one company: nothing to pick
        second = qbo.add_company(company_name="Second <Books>")
        page = httpx.get(qbo.base_url + "/connect/oauth2", params=params)
        assert (
            page.status_code == 200 and "Main &amp; Co" in page.text and "Second &lt;Books&gt;" in page.text
        )
        links = re.findall(r'href="([^"]+)"', page.text)
        assert len(links) == 2
        picked = httpx.get(html.unescape(links[1]))
        query = parse_qs(urlsplit(picked.headers["location"]).query)
        assert query["realmId"] == [second.realm_id] and query["state"] == ["s"]


def test_records_ids_and_names_never_cross_companies(qbo: EmulatorHandle, other: CompanyHandle) -> None:
    a, b = _api(qbo), _api(other)
    try:
        mine = a.create("Customer", {"DisplayName": "Same Name Ltd"})
        theirs = b.create("Customer", {"DisplayName": "Same Name Ltd"})  # no 6240: another company
        assert b.create("Customer", {"DisplayName": "Only In B"})["Id"] != "0"
        query = "select * from Customer where DisplayName = 'Only In B'"
        assert a.query(query).json()["QueryResponse"] == {}
        assert b.query(query).json()["QueryResponse"]["Customer"][0]["DisplayName"] == "Only In B"
        assert a.get(f"/customer/{mine['Id']}").json()["Customer"]["DisplayName"] == "Same Name Ltd"
        # B's counters are its own: its first customer has the id a fresh company gives.
        assert theirs["Id"] == "1"
        assert {r["DisplayName"] for r in other.list_records("Customer")} == {"Same Name Ltd", "Only In B"}
        assert "Only In B" not in {r["DisplayName"] for r in qbo.list_records("Customer")}
        assert other.company is not None  # in-process: the company's own store, as qbo.emulator.store
        assert {r.data["DisplayName"] for r in other.company.store.all("Customer")} == {
            "Same Name Ltd",
            "Only In B",
        }
        company_info = b.get("/companyinfo/1").json()["CompanyInfo"]
        assert company_info["CompanyName"] == "Other Books"
    finally:
        a.close()
        b.close()


def test_a_token_works_only_on_its_own_company(qbo: EmulatorHandle, other: CompanyHandle) -> None:
    token = other.connect().access_token
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    assert httpx.get(f"{other.company_url}/companyinfo/1", headers=headers).status_code == 200
    for realm in (qbo.realm_id, DECLARED, "123456789"):  # hosted by another company, or by none
        answer = httpx.get(f"{qbo.api_base}/company/{realm}/companyinfo/1", headers=headers)
        assert answer.status_code == 403 and fault_code(answer) == "3100"
        assert "ApplicationAuthorizationFailed" in answer.json()["Fault"]["Error"][0]["Message"]


def test_an_unknown_realm_can_answer_404_instead() -> None:
    with running(EmulatorConfig(unknown_realm_fault="not_found")) as qbo:
        headers = {"Authorization": f"Bearer {qbo.connect().access_token}"}
        answer = httpx.get(f"{qbo.api_base}/company/123456789/companyinfo/1", headers=headers)
        assert answer.status_code == 404 and fault_code(answer) == "10000"
        known = httpx.get(f"{qbo.company_url}/companyinfo/1", headers=headers)
        assert known.status_code == 200


def test_a_429_storm_on_one_company_leaves_the_others_answering(
    qbo: EmulatorHandle, other: CompanyHandle
) -> None:
    a, b = _api(qbo), _api(other)
    try:
        other.storm(seconds=30)
        stormed = [b.get("/companyinfo/1") for _ in range(3)]
        assert [r.status_code for r in stormed] == [429] * 3 and fault_code(stormed[0]) == "3001"
        assert [a.get("/companyinfo/1").status_code for _ in range(3)] == [200] * 3
        assert qbo.faults()["armed"] == [] and qbo.faults()["fired"].get("rate_limit", 0) == 0
        other.clear_faults()
        assert b.get("/companyinfo/1").status_code == 200
    finally:
        a.close()
        b.close()


def test_each_company_has_its_own_rate_limits() -> None:
    with running(EmulatorConfig(minute_seconds=30.0, requests_per_minute=3)) as qbo:
        busy = qbo.add_company(requests_per_minute=5)
        quiet = qbo.add_company()
        apis = {name: _api(company) for name, company in (("a", qbo), ("busy", busy), ("quiet", quiet))}
        try:
            spent = {
                name: [api.get("/companyinfo/1").status_code for _ in range(6)] for name, api in apis.items()
            }
            assert spent["a"] == [200] * 3 + [429] * 3  # the default's own 3 a minute
            assert spent["busy"] == [200] * 5 + [429]  # its declared 5
            assert spent["quiet"] == [200] * 3 + [429] * 3  # inherits 3, counted apart from the others
            busy.reset_throttle()
            assert apis["busy"].get("/companyinfo/1").status_code == 200
            assert apis["a"].get("/companyinfo/1").status_code == 429
        finally:
            for api in apis.values():
                api.close()


def test_disconnecting_or_revoking_one_company_leaves_the_others_tokens_working(
    qbo: EmulatorHandle,
) -> None:
    first, second = qbo.add_company(), qbo.add_company()
    a, b = first.connect(), second.connect()

    def status(company: CompanyHandle, token: str) -> int:
        return httpx.get(
            f"{company.company_url}/companyinfo/1", headers={"Authorization": f"Bearer {token}"}
        ).status_code

    assert first.disconnect() == {"revoked_grants": 1}
    assert status(first, a.access_token) == 401 and status(second, b.access_token) == 200
    revoked = httpx.post(
        qbo.base_url + "/v2/oauth2/tokens/revoke",
        json={"token": b.refresh_token},
        auth=(qbo.client_id, qbo.client_secret),
    )
    assert revoked.status_code == 200 and status(second, b.access_token) == 401
    survivor = qbo.company_handle(DECLARED).connect()
    assert status(qbo.company_handle(DECLARED), survivor.access_token) == 200
    refreshed = httpx.post(
        qbo.token_url,
        data={"grant_type": "refresh_token", "refresh_token": survivor.refresh_token},
        auth=(qbo.client_id, qbo.client_secret),
    )
    assert refreshed.status_code == 200


def test_requestids_and_request_logs_are_per_company(qbo: EmulatorHandle, other: CompanyHandle) -> None:
    a, b = _api(qbo), _api(other)
    try:
        other.clear_request_log()
        first = a.post("/customer", {"DisplayName": "Replay Probe"}, requestid="same-id")
        second = b.post("/customer", {"DisplayName": "Replay Probe"}, requestid="same-id")
        assert first.status_code == second.status_code == 200
        assert len([r for r in other.list_records("Customer") if r["DisplayName"] == "Replay Probe"]) == 1
        log = other.request_log(entries=True)
        assert log["by_endpoint"] == {"POST customer": 1}
        assert {e["realm"] for e in log["entries"]} == {other.realm_id}
        assert qbo.request_log()["by_endpoint"].get("POST customer", 0) >= 2  # the whole emulator's
    finally:
        a.close()
        b.close()


def test_webhooks_of_a_company_go_to_its_own_subscription_with_its_realm() -> None:
    app_hooks, own_hooks = Receiver(), Receiver()
    for receiver in (app_hooks, own_hooks):
        receiver.thread.start()
    config = EmulatorConfig(webhook_url=app_hooks.url, webhook_batch_window=0.05, verifier_token="vt")
    try:
        with running(config) as qbo:
            shared = qbo.add_company()  # the app's one subscription, as with Intuit
            separate = qbo.add_company(webhook_url=own_hooks.url)
            silent = qbo.add_company()  # never connected: no events
            for company in (qbo, shared, separate):
                company.connect()
            made = {
                c.realm_id: c.create_record("Customer", {"DisplayName": f"Hook {c.realm_id}"})
                for c in (qbo, shared, separate, silent)
            }
            app_events = app_hooks.wait_for(2)
            own_events = own_hooks.wait_for(1)
            time.sleep(0.3)  # anything misrouted or from the silent company would have come by now
        for raw, _ in app_hooks.bodies + own_hooks.bodies:
            assert len({e["intuitaccountid"] for e in json.loads(raw)}) == 1  # one realm per POST
        assert {(e["intuitaccountid"], e["intuitentityid"]) for e in app_hooks.events()} == {
            (qbo.realm_id, made[qbo.realm_id]["Id"]),
            (shared.realm_id, made[shared.realm_id]["Id"]),
        }
        assert [(e["intuitaccountid"], e["intuitentityid"]) for e in own_hooks.events()] == [
            (separate.realm_id, made[separate.realm_id]["Id"])
        ]
        assert len(app_events) == 2 and len(own_events) == 1
    finally:
        for receiver in (app_hooks, own_hooks):
            receiver.server.shutdown()
            receiver.server.server_close()


def test_a_failing_delivery_holds_back_only_its_own_company() -> None:
    hooks = Receiver()
    hooks.thread.start()
    config = EmulatorConfig(
        webhook_url=hooks.url, webhook_batch_window=0.05, webhook_timeout=60.0, verifier_token="vt"
    )
    try:
        with running(config) as qbo:
            stuck = qbo.add_company()
            for company in (qbo, stuck):
                company.connect()
            with hooks.holding(stuck.realm_id) as held:
                stuck.create_record("Customer", {"DisplayName": "Stuck"})
                assert held.wait(30), "the stuck company's delivery never arrived"
                free = qbo.create_record("Customer", {"DisplayName": "Free"})
                delivered = hooks.wait_for(1, realm=qbo.realm_id)
                assert [e["intuitentityid"] for e in delivered] == [free["Id"]]
                assert stuck.webhook_deliveries()["pending"] == 1
            assert len(hooks.wait_for(1, realm=stuck.realm_id)) == 1
    finally:
        hooks.server.shutdown()
        hooks.server.server_close()
