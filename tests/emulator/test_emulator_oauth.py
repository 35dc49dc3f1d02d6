"""OAuth as Intuit does it: discovery, consent, codes, rotation with grace, expiry, revocation, 401s."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle, running_emulator

REDIRECT = "http://localhost:8000/callback"


@pytest.fixture(scope="module")
def qbo() -> Iterator[EmulatorHandle]:
    config = EmulatorConfig(
        redirect_uri_allowlist=(REDIRECT,), refresh_rotation_interval=0.0, refresh_grace_period=600.0
    )
    with running_emulator(config) as handle:
        yield handle


@pytest.fixture
def http(qbo: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=qbo.base_url) as client:
        yield client


def _token(http: httpx.Client, qbo: EmulatorHandle, form: dict[str, str], **headers: str) -> httpx.Response:
    return http.post(
        "/oauth2/v1/tokens/bearer", data=form, auth=(qbo.client_id, qbo.client_secret), headers=headers
    )


def _consent(http: httpx.Client, qbo: EmulatorHandle, redirect: str = REDIRECT) -> dict[str, list[str]]:
    params = {
        "client_id": qbo.client_id,
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
    }
    answer = http.get("/connect/oauth2", params={**params, "redirect_uri": redirect, "state": "csrf1"})
    assert answer.status_code == 302
    return parse_qs(urlsplit(answer.headers["location"]).query)


def test_discovery_document_points_at_the_emulator(http: httpx.Client, qbo: EmulatorHandle) -> None:
    doc = http.get("/.well-known/openid_configuration").json()
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
    ):
        assert doc[key].startswith(qbo.base_url)
    assert doc["issuer"].startswith(qbo.base_url)
    assert http.get("/.well-known/openid_sandbox_configuration/").json() == doc


def test_consent_redirects_with_code_state_and_realm(http: httpx.Client, qbo: EmulatorHandle) -> None:
    query = _consent(http, qbo)
    assert query["state"] == ["csrf1"] and query["realmId"] == [qbo.realm_id] and query["code"]


def test_unregistered_redirect_uris_are_refused_without_redirecting(
    http: httpx.Client, qbo: EmulatorHandle
) -> None:
    params = {
        "client_id": qbo.client_id,
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
    }
    answer = http.get("/connect/oauth2", params={**params, "redirect_uri": "https://evil.example/cb"})
    assert answer.status_code == 400 and "location" not in answer.headers


def test_deny_option_answers_access_denied() -> None:
    with running_emulator(EmulatorConfig(deny_consent=True)) as denying, httpx.Client() as http:
        params = {"client_id": denying.client_id, "response_type": "code", "scope": "x", "state": "s"}
        answer = http.get(denying.base_url + "/connect/oauth2", params={**params, "redirect_uri": REDIRECT})
        assert parse_qs(urlsplit(answer.headers["location"]).query) == {
            "error": ["access_denied"],
            "state": ["s"],
        }


def test_token_response_has_exactly_intuits_fields(http: httpx.Client, qbo: EmulatorHandle) -> None:
    code = _consent(http, qbo)["code"][0]
    answer = _token(http, qbo, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {
        "token_type",
        "access_token",
        "refresh_token",
        "expires_in",
        "x_refresh_token_expires_in",
    }
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert len(body["access_token"]) > 900 and body["refresh_token"].startswith("RT1-")
    assert answer.headers["intuit_tid"]
    again = _token(http, qbo, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    hard = _token(
        http,
        qbo,
        {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        **{"x-include-refresh-token-hard-expires-in": "true"},
    )
    assert 0 < hard.json()["x_refresh_token_hard_expires_in"] <= 5 * 365 * 86400


def test_bad_client_credentials_are_401_invalid_client(http: httpx.Client, qbo: EmulatorHandle) -> None:
    answer = http.post(
        "/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=("a", "b"),
    )
    assert answer.status_code == 401 and answer.json() == {"error": "invalid_client"}


def test_rotated_refresh_token_works_only_within_the_grace_period(
    http: httpx.Client, qbo: EmulatorHandle
) -> None:
    tokens = qbo.connect(redirect_uri=REDIRECT)
    rotated = _token(http, qbo, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}).json()
    assert rotated["refresh_token"] != tokens.refresh_token
    qbo.advance_clock(300)
    assert (
        _token(http, qbo, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}).status_code
        == 200
    )
    qbo.advance_clock(400)
    late = _token(http, qbo, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def _company_info(qbo: EmulatorHandle, token: str) -> httpx.Response:
    return httpx.get(f"{qbo.company_url}/companyinfo/1", headers={"Authorization": f"Bearer {token}"})


def test_access_tokens_expire_after_an_hour_of_emulator_time(qbo: EmulatorHandle) -> None:
    token = qbo.connect(redirect_uri=REDIRECT).access_token
    assert _company_info(qbo, token).status_code == 200
    qbo.advance_clock(3601)
    expired = _company_info(qbo, token)
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Bearer realm="Intuit", error="invalid_token"'
    body = expired.json()
    assert body["fault"]["type"] == "AUTHENTICATION"
    assert body["fault"]["error"][0]["code"] == "3200"
    assert body["fault"]["error"][0]["detail"].startswith("Token expired: ")
    assert isinstance(body["time"], int)
    assert "Fault" not in body


def test_unknown_tokens_are_401(qbo: EmulatorHandle) -> None:
    answer = _company_info(qbo, "not-a-token")
    assert answer.status_code == 401
    assert answer.json()["fault"]["error"][0]["detail"] == "Malformed bearer token: too short or too long"


def test_revoke_ends_the_connection(http: httpx.Client, qbo: EmulatorHandle) -> None:
    tokens = qbo.connect(redirect_uri=REDIRECT)
    revoked = http.post(
        "/v2/oauth2/tokens/revoke",
        json={"token": tokens.refresh_token},
        auth=(qbo.client_id, qbo.client_secret),
    )
    assert revoked.status_code == 200
    assert _company_info(qbo, tokens.access_token).status_code == 401
    refresh = _token(http, qbo, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
    assert refresh.json()["error"] == "invalid_grant"


def test_a_user_disconnecting_the_app_kills_every_token(http: httpx.Client, qbo: EmulatorHandle) -> None:
    tokens = qbo.connect(redirect_uri=REDIRECT)
    assert qbo.disconnect()["revoked_grants"] >= 1
    assert _company_info(qbo, tokens.access_token).status_code == 401
    refresh = _token(http, qbo, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
