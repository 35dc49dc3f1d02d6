"""The web app: health, metrics, the conflict review pages and JSON API, as people and scripts use them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.clock import FakeClock
from engine.model import EntityType, Side
from engine.web import WebServices, create_web_app
from policies import PolicySet
from tests.support.loop import InProcess, in_process
from tests.support.sample import CUSTOMERS

C = EntityType.CUSTOMER


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[InProcess, TestClient]]:
    clock = FakeClock(datetime(2026, 11, 2, tzinfo=UTC))
    loop = in_process(f"sqlite:///{tmp_path / 'state.db'}", PolicySet.default(), clock)
    app_id = loop.app.create(C, dict(CUSTOMERS[0]))
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        link = s.find_link("default", C, Side.APP, app_id)
    assert link is not None and link.quickbooks_id is not None
    loop.app.edit(C, app_id, email="app@example.com")
    loop.quickbooks.edit(C, link.quickbooks_id, email="accounts@example.com")
    loop.runner.run_until_quiet()
    services = WebServices(store=loop.store, policy=loop.runner.policy, clock=clock)
    with TestClient(create_web_app(services)) as client:
        yield loop, client
    loop.store.dispose()


def test_healthz_answers_ok_and_unhealthy_when_a_check_fails(world: tuple[InProcess, TestClient]):
    loop, client = world
    assert client.get("/healthz").json() == {"status": "ok", "checks": {"store": True}}
    services = WebServices(
        store=loop.store, policy=loop.runner.policy, clock=loop.runner.clock, checks={"broker": lambda: False}
    )
    with TestClient(create_web_app(services)) as sick:
        response = sick.get("/healthz")
    assert response.status_code == 503 and response.json()["checks"]["broker"] is False


def test_metrics_report_conflicts_ops_events_and_echoes(world: tuple[InProcess, TestClient]):
    _, client = world
    text = client.get("/metrics").text
    assert "ledgersync_open_conflicts 1.0" in text
    assert re.search(r'ledgersync_ops\{status="applied"\} [1-9]', text)
    assert re.search(r'ledgersync_events\{status="processed"\} [1-9]', text)
    assert "ledgersync_echoes_dropped" in text and "ledgersync_links 1.0" in text


def test_the_review_page_shows_values_side_by_side_and_resolves_through_its_form(
    world: tuple[InProcess, TestClient],
):
    loop, client = world
    listing = client.get("/conflicts").text
    assert "app@example.com" in listing and "accounts@example.com" in listing
    page = client.get("/conflicts/1").text
    token = re.search(r'name="token" value="([0-9a-f]+)"', page)
    assert token is not None and "Keep QuickBooks" in page
    forged = client.post("/conflicts/1/resolve", data={"token": "0" * 64, "take": "quickbooks"})
    assert forged.status_code == 403
    done = client.post(
        "/conflicts/1/resolve",
        data={"token": token.group(1), "take": "quickbooks", "by": "maria"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "Resolved by <strong>maria</strong>" in client.get("/conflicts/1").text
    loop.runner.run_until_quiet()
    assert loop.app.get(C, "1")["email"] == "accounts@example.com"  # type: ignore[index]


def test_the_json_api_lists_shows_and_resolves(world: tuple[InProcess, TestClient]):
    loop, client = world
    (item,) = client.get("/api/conflicts").json()
    assert item["field"] == "email" and item["app_id"] == "1" and item["label"] == "Amélie O'Brien"
    detail = client.get("/api/conflicts/1").json()
    assert detail["quickbooks"] == "accounts@example.com" and detail["history"]
    resolved = client.post("/api/conflicts/1/resolve", json={"value": "both@example.com", "by": "script"})
    assert resolved.status_code == 200 and resolved.json()["resolution"] == "both@example.com"
    again = client.post("/api/conflicts/1/resolve", json={"take": "app"})
    assert again.status_code == 409
    loop.runner.run_until_quiet()
    assert loop.app.get(C, "1")["email"] == "both@example.com"  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/conflicts/99/resolve", {"take": "app"}, 404),
        ("/api/conflicts/1/resolve", {"take": "excel"}, 400),
        ("/api/conflicts/1/resolve", {"take": "app", "value": 1}, 400),
        ("/api/conflicts/1/resolve", [1, 2], 400),
    ],
)
def test_bad_api_requests_get_clear_errors(
    world: tuple[InProcess, TestClient], path: str, body: object, status: int
):
    _, client = world
    response = client.post(path, json=body)
    assert response.status_code == status and response.json()["error"]


def test_unknown_conflict_pages_are_404(world: tuple[InProcess, TestClient]):
    _, client = world
    assert client.get("/conflicts/42").status_code == 404
    assert client.get("/api/conflicts/42").status_code == 404
