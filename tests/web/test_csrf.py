"""Cross-site request forgery: another website must not be able to resolve a conflict through a
visitor's browser; the app's own page and scripts holding the API token still can."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from starlette.testclient import TestClient

from engine.web.serve import serving
from tests.web.conftest import API_TOKEN, PASSWORD, REVIEWER, World

EVIL = "https://evil.example"
BODY = json.dumps({"take": "app", "by": "the CFO"})
SAME_ORIGIN = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}


def page_token(browser: TestClient, conflict_id: int = 1) -> str:
    """Open the review page as a visitor does (which also gives the browser its CSRF cookie)."""
    found = re.search(r'name="token" value="([0-9a-f]+)"', browser.get(f"/conflicts/{conflict_id}").text)
    assert found is not None
    return found.group(1)


def assert_still_open(world: World) -> None:
    conflict = world.conflict()
    assert conflict["status"] == "open" and conflict["resolved_by"] is None


def test_the_reported_attack_a_text_plain_json_post_from_another_site_is_refused(
    world: World, client: TestClient
):
    page_token(client)  # the visitor has the app open: their browser holds its cookie
    response = client.post(
        "/api/conflicts/1/resolve",
        content=BODY,
        headers={"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403 and "cross-site" in response.json()["error"]
    # Even a browser that sends no Origin or Sec-Fetch-Site (an old one) gets nowhere with text/plain.
    response = client.post("/api/conflicts/1/resolve", content=BODY, headers={"Content-Type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.json()["error"]
    assert_still_open(world)


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type: application/json"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "Content-Type: application/json"),
        ({}, 415, "got none"),
        ({"Content-Type": "application/json"}, 403, "missing CSRF token"),
        ({"Content-Type": "application/json", "X-CSRF-Token": "0" * 64}, 403, "forged"),
        ({"Content-Type": "application/json", "Origin": EVIL}, 403, f"Origin {EVIL}"),
        ({"Content-Type": "application/json", "Origin": "null"}, 403, "Origin: null"),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403, "cross-site"),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403, "same-site"),
        ({"Content-Type": "application/json", "Authorization": "Bearer guessed"}, 403, "wrong API token"),
    ],
)
def test_the_json_api_refuses_what_another_site_can_send(
    world: World, client: TestClient, headers: dict[str, str], status: int, says: str
):
    page_token(client)
    response = client.post("/api/conflicts/1/resolve", content=BODY, headers=headers)
    assert response.status_code == status and says in response.json()["error"]
    assert_still_open(world)


def test_a_valid_page_token_does_not_help_a_cross_site_request(world: World, client: TestClient):
    token = page_token(client)
    for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        response = client.post(
            "/api/conflicts/1/resolve",
            content=BODY,
            headers={"Content-Type": "application/json", "X-CSRF-Token": token, **headers},
        )
        assert response.status_code == 403
        form = client.post("/conflicts/1/resolve", data={"token": token, "take": "app"}, headers=headers)
        assert form.status_code == 403 and "Refused" in form.text
    assert_still_open(world)


def test_the_form_refuses_a_missing_a_foreign_and_another_browsers_token(world: World, client: TestClient):
    assert client.post("/conflicts/1/resolve", data={"take": "app"}).status_code == 403
    with TestClient(world.app(secret="b3RoZXItc2VjcmV0LW9mLWFub3RoZXItaW5zdGFsbGF0aW9u")) as other:
        foreign = page_token(other)
    refused = client.post("/conflicts/1/resolve", data={"token": foreign, "take": "app"})
    assert refused.status_code == 403 and "reload the page" in refused.text
    # The attacker opens the page in their own browser and plants its token in a form for the victim.
    with TestClient(world.app()) as attacker:
        stolen = page_token(attacker)
    page_token(client)
    assert client.post("/conflicts/1/resolve", data={"token": stolen, "take": "app"}).status_code == 403
    assert_still_open(world)


def test_the_page_token_works_in_the_json_api_from_the_page_itself(world: World, client: TestClient):
    token = page_token(client)
    response = client.post(
        "/api/conflicts/1/resolve",
        json={"take": "quickbooks", "by": "maria"},
        headers={"X-CSRF-Token": token, **SAME_ORIGIN},
    )
    assert response.status_code == 200
    assert response.json()["resolved_by"] == "maria"  # who is signed in, not the name sent


def test_a_restart_or_another_replica_accepts_the_pages_token_and_another_secret_does_not(
    world: World, client: TestClient
):
    token = page_token(client)  # served by one process
    cookies = dict(client.cookies)
    with TestClient(
        world.app(secret="YW5vdGhlci1zZWNyZXQtZW50aXJlbHktMDEyMzQ1Njc4OQ=="), cookies=cookies
    ) as b:
        refused = b.post("/conflicts/1/resolve", data={"token": token, "take": "app"}, headers=SAME_ORIGIN)
    assert refused.status_code == 401  # another secret: neither the session nor the token holds
    assert_still_open(world)
    with TestClient(world.app(), cookies=cookies) as replica:  # built from the same settings
        done = replica.post(
            "/conflicts/1/resolve",
            data={"token": token, "take": "app", "by": "maria"},
            headers=SAME_ORIGIN,
            follow_redirects=False,
        )
    assert done.status_code == 303 and "error" not in done.headers["location"]
    assert world.conflict()["resolved_by"] == "maria"


def test_behind_a_proxy_the_public_url_is_our_origin(world: World):
    # The browser talks https to the proxy, which forwards plain http to the app's own address.
    proxied = {"Origin": "https://sync.example.com", "Sec-Fetch-Site": "same-origin"}
    with TestClient(
        world.app(public_url="https://sync.example.com/"), base_url="http://127.0.0.1:8000"
    ) as app:
        login = app.get("/login")
        assert "Secure" in login.headers["set-cookie"]  # the cookie only travels over https
        csrf = login.cookies["ledgersync_csrf"]
        token = re.search(r'name="token" value="([0-9a-f]+)"', login.text)
        assert token is not None
        signed_in = app.post(
            "/login",
            data={"token": token.group(1), "login": REVIEWER, "password": PASSWORD},
            headers={"Cookie": f"ledgersync_csrf={csrf}", **proxied},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303 and "Secure" in signed_in.headers["set-cookie"]
        cookie = f"ledgersync_csrf={csrf}; ledgersync_session={signed_in.cookies['ledgersync_session']}"
        done = app.post(
            "/conflicts/1/resolve",
            data={"token": token.group(1), "take": "app"},
            headers={"Cookie": cookie, **proxied},
            follow_redirects=False,
        )
    assert done.status_code == 303
    assert world.conflict()["resolved_by"] == REVIEWER


def test_a_script_resolves_over_http_with_the_api_token_and_without_it_is_refused(world: World):
    def post(base: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(
            f"{base}/api/conflicts/1/resolve",
            data=json.dumps({"value": "both@example.com", "by": "nightly script"}).encode(),
            headers={"Content-Type": "application/json", **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.load(error)

    with serving(world.app()) as base:
        status, body = post(base, {})
        assert status == 401 and "Authorization: Bearer" in body["error"]
        status, body = post(base, {"Authorization": f"Bearer {API_TOKEN}"})
    assert status == 200 and body["resolved_by"] == "nightly script (API token, name not verified)"
    world.loop.runner.run_until_quiet()
    assert world.loop.app.get(world.conflict()["entity"], "1")["email"] == "both@example.com"  # type: ignore[index,arg-type]


def test_without_an_api_token_configured_a_bearer_is_refused(world: World):
    with TestClient(world.app(api_token=None)) as script:
        response = script.post(
            "/api/conflicts/1/resolve", json={"take": "app"}, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
    assert response.status_code == 403 and "web.api_token" in response.json()["error"]
    assert_still_open(world)
