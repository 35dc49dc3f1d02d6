"""Signing in to the console: every page and API route needs a session (or, for the API and /metrics,
the API token); health checks and QuickBooks' webhooks stay open; sessions end when they should."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from pydantic import SecretStr
from starlette.routing import Route
from starlette.testclient import TestClient

from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from engine.accounts import MAX_FAILURES, set_password
from engine.web.sessions import COOKIE
from ledgersync.bootstrap import QuickBooksSection
from tests.web.conftest import ADMIN, API_TOKEN, PASSWORD, REVIEWER, World, sign_in

OPEN = {"/healthz", "/login", "/webhooks/quickbooks"}
PARAMS = {"conflict_id": "1", "link_id": "nope", "action": "retry"}


def with_quickbooks(world: World) -> None:
    """A quickbooks section, so /connect, /callback and the webhook receiver exist too."""
    world.quickbooks = QuickBooksSection(
        environment="sandbox",
        client_id="client-id",
        client_secret=SecretStr("client-secret"),
        webhook_verifier_token=SecretStr("verifier"),
    )


def every_route(app: object) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, Route)
        path = re.sub(r"{(\w+)(:\w+)?}", lambda m: PARAMS[m.group(1)], route.path)
        found += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


def test_every_page_and_api_route_refuses_a_request_without_a_session(world: World):
    with_quickbooks(world)
    app = world.app()
    routes = every_route(app)
    assert {("GET", "/conflicts"), ("POST", "/parked/retry"), ("GET", "/connect")} <= set(routes)
    checked = 0
    with TestClient(app) as anonymous:
        for method, path in routes:
            if path in OPEN:
                continue
            answer = anonymous.request(method, path, follow_redirects=False)
            checked += 1
            if path.startswith("/api/") or path == "/metrics":
                assert answer.status_code == 401, (method, path)
                assert "sign in first" in answer.json()["error"]
            elif method == "GET":
                assert answer.status_code == 303, (method, path)
                assert answer.headers["location"].startswith("/login?next=")
            else:
                assert answer.status_code == 401, (method, path)
            assert "accounts@example.com" not in answer.text
    assert checked >= 15
    assert world.conflict()["status"] == "open"


def test_health_checks_the_sign_in_page_and_quickbooks_webhooks_stay_open(world: World):
    with_quickbooks(world)
    with TestClient(world.app()) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/login").status_code == 200
        # Unsigned, so QuickBooks' receiver refuses it itself: the gate let it through.
        delivery = anonymous.post("/webhooks/quickbooks", content=b"{}")
        assert delivery.status_code != 303 and "Sign in first" not in delivery.text


@pytest.mark.parametrize(
    "cookie",
    ["", "garbage", "eyJ1IjoibWFyaWEiLCJyIjoiYWRtaW4iLCJ0IjoxNzkzNTg0MDAwLCJwIjoiMCJ9.00"],
)
def test_a_missing_or_forged_session_cookie_is_refused(world: World, cookie: str):
    with TestClient(world.app(), cookies={COOKIE: cookie}) as forged:
        assert forged.get("/conflicts", follow_redirects=False).status_code == 303
        assert forged.get("/api/conflicts").status_code == 401


def test_a_session_from_another_installation_or_past_its_lifetime_is_refused(
    world: World, client: TestClient
):
    cookies = dict(client.cookies)
    with TestClient(
        world.app(secret="YW5vdGhlci1zZWNyZXQtZm9yLWFub3RoZXItaW5zdGFsbA=="), cookies=cookies
    ) as b:
        assert b.get("/api/conflicts").status_code == 401
    with TestClient(world.app(), cookies=cookies) as replica:  # the same settings: the same session
        assert replica.get("/api/conflicts").status_code == 200
    world.loop.runner.clock.advance(timedelta(hours=12).total_seconds())  # type: ignore[attr-defined]
    assert client.get("/api/conflicts").status_code == 401


def test_a_new_password_or_a_removed_login_ends_the_session(world: World, client: TestClient):
    assert client.get("/api/conflicts").status_code == 200
    with world.loop.store.session() as s:
        set_password(s, REVIEWER, "a brand new password")
    assert client.get("/api/conflicts").status_code == 401
    sign_in(client, REVIEWER, "a brand new password")
    assert client.get("/api/conflicts").status_code == 200
    with world.loop.store.session() as s:
        s.delete_user(REVIEWER)
    assert client.get("/api/conflicts").status_code == 401


def test_the_session_cookie_is_http_only_and_not_sent_on_cross_site_posts(world: World):
    with TestClient(world.app()) as browser:
        page = browser.get("/login")
        token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
        assert token is not None
        done = browser.post(
            "/login",
            data={"token": token.group(1), "login": REVIEWER, "password": PASSWORD},
            follow_redirects=False,
        )
    cookie = done.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_repeated_wrong_passwords_lock_the_login_and_say_so(world: World):
    with TestClient(world.app()) as browser:
        for _ in range(MAX_FAILURES):
            page = browser.get("/login")
            token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
            assert token is not None
            wrong = browser.post("/login", data={"token": token.group(1), "login": REVIEWER, "password": "x"})
            assert wrong.status_code == 401
        page = browser.get("/login")
        token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
        assert token is not None
        right = browser.post(
            "/login", data={"token": token.group(1), "login": REVIEWER, "password": PASSWORD}
        )
    assert right.status_code == 401 and "locked for 15 more minute(s)" in right.text
    assert COOKIE not in right.headers.get("set-cookie", "")


def test_the_sign_in_form_needs_its_token_and_goes_back_only_to_this_site(world: World):
    with TestClient(world.app()) as browser:
        assert browser.post("/login", data={"login": REVIEWER, "password": PASSWORD}).status_code == 403
        page = browser.get("/login?next=//evil.example/")
        token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
        assert token is not None
        done = browser.post(
            "/login",
            data={
                "token": token.group(1),
                "login": REVIEWER,
                "password": PASSWORD,
                "next": "//evil.example/",
            },
            follow_redirects=False,
        )
    assert done.status_code == 303 and done.headers["location"] == "/conflicts"


def test_sign_out_needs_the_pages_token_and_ends_the_session(client: TestClient):
    assert client.post("/logout", data={}).status_code == 403
    page = client.get("/conflicts").text
    token = re.search(r'name="token" value="([0-9a-f]+)"', page)
    assert token is not None
    done = client.post("/logout", data={"token": token.group(1)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login?out=1"
    assert client.get("/conflicts", follow_redirects=False).status_code == 303


def test_only_an_admin_may_reconnect_a_company(world: World):
    with running_emulator(EmulatorConfig()) as qbo:
        world.quickbooks = QuickBooksSection(
            environment=qbo.base_url, client_id=qbo.client_id, client_secret=SecretStr(qbo.client_secret)
        )
        app = world.app()
        with TestClient(app) as reviewer:
            sign_in(reviewer, REVIEWER)
            refused = reviewer.get("/connect", follow_redirects=False)
            assert refused.status_code == 403 and "Only an admin" in refused.text
            assert "Ask an admin to reconnect" not in reviewer.get("/connections").text  # nothing to do
        with TestClient(app) as admin:
            sign_in(admin, ADMIN)
            started = admin.get("/connect", follow_redirects=False)
    assert started.status_code == 302 and started.headers["location"].startswith(qbo.base_url)


def test_metrics_take_the_api_token_or_a_session(world: World, client: TestClient):
    assert client.get("/metrics").status_code == 200
    with TestClient(world.app()) as scraper:
        assert scraper.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 200
        assert scraper.get("/metrics").status_code == 401
