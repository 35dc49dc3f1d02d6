"""OAuth against the emulator: endpoints per environment, the CSRF state, code exchange, errors mapped;
and no token or secret in any log line, even at DEBUG."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr, ValidationError

from connectors.quickbooks.oauth import OAuthClient
from connectors.quickbooks.settings import QboSettings
from connectors.quickbooks.tokens import WebhookNotifier
from engine.errors import ConfigurationError, NeedsReauthorizationError
from tests.quickbooks.conftest import Rig


def test_endpoints_follow_the_environment():
    def make(environment: str) -> QboSettings:
        return QboSettings(environment=environment, client_id="i", client_secret=SecretStr("s"))

    assert make("production").api_base == "https://quickbooks.api.intuit.com/v3"
    assert make("sandbox").api_base == "https://sandbox-quickbooks.api.intuit.com/v3"
    assert "openid_sandbox_configuration" in make("sandbox").discovery_url
    emulator = make("http://127.0.0.1:8700/")
    assert emulator.is_emulator and emulator.api_base == "http://127.0.0.1:8700/v3"
    assert emulator.discovery_url == "http://127.0.0.1:8700/.well-known/openid_configuration"
    with pytest.raises(ValidationError):
        make("staging")


def test_the_consent_url_carries_scopes_redirect_and_a_fresh_random_state(rig: Rig):
    first, second = rig.oauth.authorization_request(), rig.oauth.authorization_request()
    assert first.state != second.state and len(first.state) >= 30
    query = parse_qs(urlsplit(first.url).query)
    assert query["scope"] == ["com.intuit.quickbooks.accounting"]
    assert query["redirect_uri"] == [rig.settings.redirect_uri] and query["state"] == [first.state]
    assert first.url.startswith(rig.qbo.base_url + "/connect/oauth2?")


def test_a_realm_pick_is_sent_to_the_emulator_and_refused_for_intuit(rig: Rig):
    picked = rig.oauth.authorization_request(realm="9341455600000002")
    assert parse_qs(urlsplit(picked.url).query)["realm"] == ["9341455600000002"]
    assert "realm" not in parse_qs(urlsplit(rig.oauth.authorization_request().url).query)
    intuit = QboSettings(environment="sandbox", client_id="i", client_secret=SecretStr("s"))
    with pytest.raises(ConfigurationError, match="picked on Intuit's consent page"):
        OAuthClient(rig.oauth.http, intuit, rig.clock).authorization_request(realm="1")


def test_a_callback_with_another_state_is_refused_as_csrf():
    with pytest.raises(ConfigurationError, match="CSRF"):
        OAuthClient.parse_callback("http://localhost/cb?code=x&realmId=1&state=forged", "expected")
    with pytest.raises(NeedsReauthorizationError, match="refused"):
        OAuthClient.parse_callback("http://localhost/cb?error=access_denied&state=s", "s")


def test_code_exchange_gives_tokens_with_their_expiries_and_realm(rig: Rig):
    callback = rig.oauth.consent_automatically(rig.oauth.authorization_request())
    tokens = rig.oauth.exchange_code(callback)
    now = rig.clock.now()
    assert tokens.realm_id == rig.qbo.realm_id
    assert (tokens.expires_at - now).total_seconds() == 3600
    assert (
        tokens.refresh_hard_expires_at is not None
        and tokens.refresh_hard_expires_at > tokens.refresh_expires_at
    )
    with pytest.raises(NeedsReauthorizationError):  # a code works once (invalid_grant)
        rig.oauth.exchange_code(callback)


def test_a_wrong_client_secret_is_a_configuration_error(rig: Rig):
    callback = rig.oauth.consent_automatically(rig.oauth.authorization_request())
    wrong = rig.settings.model_copy(update={"client_secret": SecretStr("nope")})
    with pytest.raises(ConfigurationError):
        OAuthClient(rig.http, wrong, rig.clock).exchange_code(callback)


def test_a_revoked_grant_cannot_be_refreshed(rig: Rig):
    tokens = rig.connect("c1")
    rig.oauth.revoke(tokens.refresh_token)
    with pytest.raises(NeedsReauthorizationError):
        rig.oauth.refresh(tokens.refresh_token)


def test_no_token_or_secret_appears_in_the_logs(rig: Rig, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    hook = rig.new_http()
    custodian = rig.new_custodian(notifier=WebhookNotifier(hook, "http://127.0.0.1:9/unreachable"))
    tokens = rig.connect("c1", custodian)
    client = rig.client("c1", custodian=custodian)
    created = client.create("Customer", {"DisplayName": "Secretive"}, "op-1")
    rig.qbo.advance_clock(3601)  # a 401 and a refresh
    client.read("Customer", created["Id"])
    with custodian.store.session() as session:
        stored = session.get_connection("c1")
    assert stored is not None and stored.tokens_encrypted is not None
    latest = custodian.cipher.decrypt(stored.tokens_encrypted)
    rig.qbo.disconnect()  # a 401, invalid_grant, needs_reauth, a notice that fails to deliver
    with pytest.raises(NeedsReauthorizationError):
        client.read("Customer", created["Id"])
    secrets = [
        tokens.access_token.get_secret_value(),
        tokens.refresh_token.get_secret_value(),
        latest.access_token.get_secret_value(),
        latest.refresh_token.get_secret_value(),
        rig.settings.client_secret.get_secret_value(),
        rig.key,
    ]
    assert len(caplog.records) > 5
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__}"
        for secret in secrets:
            assert secret[:24] not in text, f"{record.name} logged a secret"
