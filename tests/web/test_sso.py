"""Signing in with the company's identity provider (OpenID Connect): only a login an admin made may
sign in this way, and an ID token that does not prove who it is is refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from connectors.oidc import OidcSettings
from engine.accounts import add_user
from engine.state import Role
from engine.web.serve import serving
from tests.support.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeProvider
from tests.web.conftest import World


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    with serving(fake.app()) as base:
        fake.issuer = base
        yield fake


@pytest.fixture
def sso_world(world: World, provider: FakeProvider) -> World:
    world.sections["oidc"] = OidcSettings(
        issuer=provider.issuer, client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET), label="Acme SSO"
    )
    with world.loop.store.session() as s:
        add_user(
            s, "maria@example.com", Role.REVIEWER, "an unused long password", world.loop.runner.clock.now()
        )
    return world


def through_the_provider(browser: TestClient, start: str = "/login/sso?next=/parked") -> httpx.Response:
    """What a browser does: to the provider (which consents at once) and back to the callback."""
    to_provider = browser.get(start, follow_redirects=False)
    assert to_provider.status_code == 302, to_provider.text
    back = httpx.get(to_provider.headers["location"], follow_redirects=False).headers["location"]
    return browser.get(back, follow_redirects=False)


def test_a_login_an_admin_made_signs_in_through_the_provider(sso_world: World):
    with TestClient(sso_world.app(public_url="http://testserver")) as browser:
        assert "Sign in with Acme SSO" in browser.get("/login").text
        done = through_the_provider(browser)
        assert done.status_code == 303 and done.headers["location"] == "/parked"
        assert "Signed in as <strong>maria@example.com</strong>" in browser.get("/parked").text


@pytest.mark.parametrize(
    ("spoil", "email", "verified", "says"),
    [
        ("audience", "maria@example.com", True, "Invalid claim: &#39;aud&#39;"),
        ("nonce", "maria@example.com", True, "Invalid claim: &#39;nonce&#39;"),
        ("expired", "maria@example.com", True, "expired"),
        ("key", "maria@example.com", True, "not valid"),
        ("", "maria@example.com", False, "did not vouch for an e-mail address"),
        ("", "stranger@example.com", True, "stranger@example.com has no login here"),
    ],
)
def test_a_token_that_does_not_prove_a_known_login_is_refused(
    sso_world: World, provider: FakeProvider, spoil: str, email: str, verified: bool, says: str
):
    provider.spoil, provider.email, provider.email_verified = spoil, email, verified
    with TestClient(sso_world.app(public_url="http://testserver")) as browser:
        done = through_the_provider(browser)
        assert done.status_code == 401 and says in done.text, done.text
        assert browser.get("/conflicts", follow_redirects=False).status_code == 303  # no session


def test_an_answer_that_did_not_start_in_this_browser_is_refused(sso_world: World, provider: FakeProvider):
    app = sso_world.app(public_url="http://testserver")
    with TestClient(app) as attacker:
        to_provider = attacker.get("/login/sso", follow_redirects=False)
        back = httpx.get(to_provider.headers["location"], follow_redirects=False).headers["location"]
    with TestClient(app) as victim:  # the attacker's answer planted in the victim's browser
        refused = victim.get(back, follow_redirects=False)
        assert refused.status_code == 401 and "did not start in this browser" in refused.text
        assert victim.get("/conflicts", follow_redirects=False).status_code == 303
