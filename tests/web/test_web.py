"""The web app: health, metrics, the conflict review pages and JSON API, as people and scripts use them."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from engine.model import EntityType
from engine.web import WebServices, create_web_app
from tests.web.conftest import API_TOKEN, World

C = EntityType.CUSTOMER
SCRIPT = {"Authorization": f"Bearer {API_TOKEN}"}


def test_healthz_answers_ok_and_unhealthy_when_a_check_fails(world: World):
    loop = world.loop
    with TestClient(world.app()) as anonymous:  # a load balancer's probe has no session
        assert anonymous.get("/healthz").json() == {"status": "ok", "checks": {"store": True}}
    services = WebServices(
        store=loop.store, policy=loop.runner.policy, clock=loop.runner.clock, checks={"broker": lambda: False}
    )
    with TestClient(create_web_app(services)) as sick:
        response = sick.get("/healthz")
    assert response.status_code == 503 and response.json()["checks"]["broker"] is False


def test_metrics_report_conflicts_ops_events_and_echoes(world: World):
    with TestClient(world.app()) as scraper:
        assert scraper.get("/metrics").status_code == 401
        assert scraper.get("/metrics", headers={"Authorization": "Bearer guessed"}).status_code == 403
        text = scraper.get("/metrics", headers=SCRIPT).text
    assert 'ledgersync_open_conflicts{connection="default"} 1.0' in text
    assert re.search(r'ledgersync_ops\{connection="default",status="applied"\} [1-9]', text)
    assert re.search(r'ledgersync_events\{connection="default",status="processed"\} [1-9]', text)
    assert "ledgersync_echoes_dropped" in text and 'ledgersync_links{connection="default"} 1.0' in text


def test_the_review_page_shows_values_side_by_side_and_resolves_through_its_form(
    world: World, client: TestClient
):
    listing = client.get("/conflicts").text
    assert "app@example.com" in listing and "accounts@example.com" in listing
    assert "Email" in listing and "Amélie O&#39;Brien" in listing  # QuickBooks' label, the record's name
    page = client.get("/conflicts/1").text
    token = re.search(r'name="token" value="([0-9a-f]+)"', page)
    assert token is not None and "Keep QuickBooks" in page
    forged = client.post("/conflicts/1/resolve", data={"token": "0" * 64, "take": "quickbooks"})
    assert forged.status_code == 403
    done = client.post(
        "/conflicts/1/resolve",
        data={"token": token.group(1), "take": "quickbooks", "by": "maria"},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "Resolved by <strong>maria</strong>" in client.get("/conflicts/1").text
    assert world.conflict()["resolved_by"] == "maria"
    world.loop.runner.run_until_quiet()
    assert world.loop.app.get(C, "1")["email"] == "accounts@example.com"  # type: ignore[index]


def test_the_json_api_lists_shows_and_resolves(world: World, client: TestClient):
    (item,) = client.get("/api/conflicts").json()
    with TestClient(world.app()) as script:  # a script: the API token, no session
        assert script.get("/api/conflicts", headers=SCRIPT).json() == [item]
    assert item["field"] == "email" and item["app_id"] == "1" and item["label"] == "Amélie O'Brien"
    detail = client.get("/api/conflicts/1").json()
    assert detail["quickbooks"] == "accounts@example.com" and detail["history"]
    resolved = client.post(
        "/api/conflicts/1/resolve", json={"value": "both@example.com", "by": "script"}, headers=SCRIPT
    )
    assert resolved.status_code == 200 and resolved.json()["resolution"] == "both@example.com"
    assert resolved.json()["resolved_by"] == "script (API token, name not verified)"
    again = client.post("/api/conflicts/1/resolve", json={"take": "app"}, headers=SCRIPT)
    assert again.status_code == 409
    world.loop.runner.run_until_quiet()
    assert world.loop.app.get(C, "1")["email"] == "both@example.com"  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/conflicts/99/resolve", {"take": "app"}, 404),
        ("/api/conflicts/1/resolve", {"take": "excel"}, 400),
        ("/api/conflicts/1/resolve", {"take": "app", "value": 1}, 400),
        ("/api/conflicts/1/resolve", [1, 2], 400),
        ("/api/conflicts/1/resolve", {"take": "app", "by": ["not", "a", "name"]}, 400),
        ("/api/conflicts/1/resolve", {"take": "app", "by": "x" * 81}, 400),
    ],
)
def test_bad_api_requests_get_clear_errors(client: TestClient, path: str, body: object, status: int):
    response = client.post(path, json=body, headers=SCRIPT)
    assert response.status_code == status and response.json()["error"]


def test_unknown_conflict_pages_are_404(client: TestClient):
    assert client.get("/records/nope").status_code == 404
    assert client.get("/conflicts/42").status_code == 404
    assert client.get("/api/conflicts/42").status_code == 404
