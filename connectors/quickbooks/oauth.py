"""Intuit's OAuth 2.0 over an injected `httpx.Client`: discovery, consent URL, code exchange, refresh, revoke.

Hand-written on httpx rather than Authlib: the flow is four small requests, Intuit adds its own
header (`x-include-refresh-token-hard-expires-in`) and fields (`x_refresh_token_expires_in`), and
the transport must stay injectable so tests run against the emulator without patching.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, SecretStr

from connectors.quickbooks import faults
from connectors.quickbooks.settings import QboSettings
from engine.errors import (
    ConfigurationError,
    LedgersyncError,
    NeedsReauthorizationError,
    UpstreamUnavailableError,
)
from engine.ports import Clock

log = logging.getLogger(__name__)

HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
#: The emulator's consent parameter naming the company that consents (its company picker's answer).
REALM_PICK = "realm"
STATE_BYTES = 24


class TokenSet(BaseModel):
    """One grant's tokens and when they die; secrets stay SecretStr."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: AwareDatetime
    refresh_expires_at: AwareDatetime
    refresh_hard_expires_at: AwareDatetime | None = None
    realm_id: str | None = None

    def expires_within(self, now: datetime, margin: timedelta) -> bool:
        return self.expires_at - now < margin


class Endpoints(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str


class AuthorizationRequest(BaseModel):
    """The consent URL to send the user to, and the CSRF `state` to expect back."""

    model_config = ConfigDict(frozen=True)

    url: str
    state: str


class Callback(BaseModel):
    """What Intuit's redirect carried back: the code and the company (realm) it is for."""

    model_config = ConfigDict(frozen=True)

    code: SecretStr
    realm_id: str
    state: str


class OAuthClient:
    """The app's side of Intuit's authorization-code flow."""

    def __init__(self, http: httpx.Client, settings: QboSettings, clock: Clock) -> None:
        self.http = http
        self.settings = settings
        self.clock = clock
        self._endpoints: Endpoints | None = None

    def endpoints(self) -> Endpoints:
        """The discovery document's endpoints (fetched once per client)."""
        if self._endpoints is None:
            response = self._call("GET", self.settings.discovery_url, what="discovery")
            if response.status_code != 200:
                raise ConfigurationError(
                    "QuickBooks OAuth discovery failed",
                    detail=f"{self.settings.discovery_url} answered {response.status_code}",
                    tid=response.headers.get("intuit_tid"),
                )
            self._endpoints = Endpoints.model_validate(response.json())
        return self._endpoints

    def authorization_request(
        self, state: str | None = None, realm: str | None = None
    ) -> AuthorizationRequest:
        """The consent URL, with a fresh random CSRF `state` unless one is given. `realm`: the company
        that consents, an emulator's stand-in for the company a user picks on Intuit's consent page
        (its `realm` parameter); Intuit has no such parameter, so it is refused there."""
        state = state or secrets.token_urlsafe(STATE_BYTES)
        params = {
            "client_id": self.settings.client_id,
            "response_type": "code",
            "scope": " ".join(self.settings.scopes),
            "redirect_uri": self.settings.redirect_uri,
            "state": state,
        }
        if realm is not None:
            if not self.settings.is_emulator:
                raise ConfigurationError(
                    "a company is picked on Intuit's consent page, not named in advance",
                    detail=f"realm {realm} was asked for against {self.settings.environment}",
                )
            params[REALM_PICK] = realm
        query = urlencode(params)
        return AuthorizationRequest(url=f"{self.endpoints().authorization_endpoint}?{query}", state=state)

    @staticmethod
    def parse_callback(callback_url: str, expected_state: str) -> Callback:
        """Check the redirect's `state` (constant time) and take its code and realmId."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}
        if not secrets.compare_digest(query.get("state", ""), expected_state):
            raise ConfigurationError("the OAuth callback's state does not match: possible CSRF, start over")
        if "error" in query:
            raise NeedsReauthorizationError("QuickBooks consent was refused", detail=query["error"])
        if "code" not in query or "realmId" not in query:
            raise ConfigurationError("the OAuth callback carries no code or realmId")
        return Callback(code=SecretStr(query["code"]), realm_id=query["realmId"], state=query["state"])

    def consent_automatically(self, request: AuthorizationRequest) -> Callback:
        """Emulators consent at once: follow the consent URL ourselves and read the redirect."""
        if not self.settings.is_emulator:
            raise ConfigurationError("only an emulator consents without a browser; open the URL instead")
        response = self._call("GET", request.url, what="consent")
        location = response.headers.get("location")
        if response.status_code not in (301, 302, 303, 307) or not location:
            raise ConfigurationError(
                "the emulator did not redirect after consent", detail=response.text[:200]
            )
        return self.parse_callback(location, request.state)

    def exchange_code(self, callback: Callback) -> TokenSet:
        """Trade the authorization code for tokens (the code works once)."""
        form = {
            "grant_type": "authorization_code",
            "code": callback.code.get_secret_value(),
            "redirect_uri": self.settings.redirect_uri,
        }
        return self._token_request(form, callback.realm_id)

    def refresh(self, refresh_token: SecretStr, realm_id: str | None = None) -> TokenSet:
        """A new token pair; the refresh token may have rotated, so persist the answer's."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value()}
        return self._token_request(form, realm_id)

    def revoke(self, token: SecretStr) -> None:
        """Revoke the grant (either token ends the whole connection)."""
        response = self._call(
            "POST",
            self.endpoints().revocation_endpoint,
            what="revoke",
            json={"token": token.get_secret_value()},
            auth=self._basic(),
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            raise self._token_error(response, "revoke")

    # internals

    def _basic(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.settings.client_id, self.settings.client_secret.get_secret_value())

    def _token_request(self, form: dict[str, str], realm_id: str | None) -> TokenSet:
        now = self.clock.now()
        response = self._call(
            "POST",
            self.endpoints().token_endpoint,
            what=form["grant_type"],
            data=form,
            auth=self._basic(),
            headers={"Accept": "application/json", HARD_EXPIRY_HEADER: "true"},
        )
        if response.status_code != 200:
            raise self._token_error(response, form["grant_type"])
        body: dict[str, Any] = response.json()
        hard = body.get("x_refresh_token_hard_expires_in")
        log.debug(
            "QuickBooks tokens issued",
            extra={"grant_type": form["grant_type"], "intuit_tid": response.headers.get("intuit_tid")},
        )
        return TokenSet(
            access_token=SecretStr(body["access_token"]),
            refresh_token=SecretStr(body["refresh_token"]),
            expires_at=now + timedelta(seconds=int(body["expires_in"])),
            refresh_expires_at=now + timedelta(seconds=int(body["x_refresh_token_expires_in"])),
            refresh_hard_expires_at=now + timedelta(seconds=int(hard)) if hard else None,
            realm_id=realm_id,
        )

    def _call(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, follow_redirects=False, **kwargs)
        except httpx.TransportError as error:
            raise UpstreamUnavailableError(
                f"QuickBooks OAuth {what} failed in transit", detail=type(error).__name__
            ) from error

    @staticmethod
    def _token_error(response: httpx.Response, what: str) -> LedgersyncError:
        # The one fault table: invalid_grant -> NeedsReauthorizationError, invalid_client ->
        # ConfigurationError, 5xx -> UpstreamUnavailableError.
        error = faults.error_from_response(response.status_code, response.content, response.headers)
        log.warning(
            "QuickBooks OAuth %s refused: HTTP %d %s",
            what,
            response.status_code,
            type(error).__name__,
            extra={"status": response.status_code, "intuit_tid": error.tid},
        )
        return error
