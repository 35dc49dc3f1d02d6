"""OpenID Connect's authorization-code flow over an injected `httpx.Client`, for the console's
"Sign in with ..." (engine/web/sso.py's IdentityProvider).

Authlib builds the authorization request and validates the ID token's claims (issuer, audience,
expiry, nonce) as the OpenID Connect spec lists them; its JOSE library (joserfc) checks the token's
signature against the provider's published keys. Authlib and joserfc are used here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from connectors.oidc.settings import OidcSettings
from engine.errors import UpstreamUnavailableError
from engine.web.sso import SignInRefusedError

log = logging.getLogger(__name__)

#: Signature algorithms accepted for ID tokens (what Google and Microsoft use); never "none" or HMAC.
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "PS256"]


class OidcClient:
    def __init__(self, http: httpx.Client, settings: OidcSettings) -> None:
        self.http = http
        self.settings = settings
        self._discovery: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return self.settings.label

    def start(self, redirect_uri: str) -> tuple[str, str]:
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        address = prepare_grant_uri(
            self._endpoint("authorization_endpoint"),
            client_id=self.settings.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=" ".join(self.settings.scopes),
            state=state,
            nonce=nonce,
        )
        return str(address), json.dumps({"state": state, "nonce": nonce})

    def finish(self, answer: Mapping[str, str], kept: str, redirect_uri: str) -> str:
        expected = json.loads(kept)
        if "error" in answer:
            raise SignInRefusedError(f"the provider answered {answer['error']}")
        if not secrets.compare_digest(answer.get("state", ""), expected["state"]) or not answer.get("code"):
            raise SignInRefusedError("the answer does not belong to this sign-in (state)")
        tokens = self._post(
            self._endpoint("token_endpoint"),
            {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": redirect_uri},
        )
        if not isinstance(tokens.get("id_token"), str):
            raise SignInRefusedError("the provider sent no ID token")
        claims = self._verified(tokens["id_token"], expected["nonce"])
        email = claims.get("email")
        if not isinstance(email, str) or not email or claims.get("email_verified") is False:
            raise SignInRefusedError("the provider did not vouch for an e-mail address")
        return email.strip().lower()

    def _verified(self, id_token: str, nonce: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(self._get(self._endpoint("jwks_uri")))  # type: ignore[arg-type]
        try:
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            claims = CodeIDToken(
                token.claims,
                token.header,
                options={
                    "iss": {"values": [self.settings.issuer]},
                    "aud": {"values": [self.settings.client_id]},
                },
                params={"nonce": nonce},
            )
            claims.validate(now=int(time.time()))
        except (JoseError, ValueError) as error:
            raise SignInRefusedError(f"the ID token is not valid ({error})") from None
        return dict(token.claims)

    def _endpoint(self, name: str) -> str:
        if self._discovery is None:
            found = self._get(f"{self.settings.issuer}/.well-known/openid-configuration")
            if found.get("issuer", "").rstrip("/") != self.settings.issuer:
                raise SignInRefusedError("the provider's discovery document names another issuer")
            self._discovery = found
        value = self._discovery.get(name)
        if not isinstance(value, str):
            raise UpstreamUnavailableError(f"the provider's discovery document has no {name}")
        return value

    def _get(self, url: str) -> dict[str, Any]:
        return self._answer(lambda: self.http.get(url, timeout=self.settings.timeout_seconds), url)

    def _post(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        auth = (self.settings.client_id, self.settings.client_secret.get_secret_value())
        return self._answer(
            lambda: self.http.post(url, data=form, auth=auth, timeout=self.settings.timeout_seconds), url
        )

    def _answer(self, send: Any, url: str) -> dict[str, Any]:
        try:
            response: httpx.Response = send()
        except httpx.HTTPError as error:
            raise UpstreamUnavailableError(
                "the identity provider did not answer", detail=type(error).__name__
            ) from None
        if response.status_code >= 500:
            raise UpstreamUnavailableError(f"the identity provider failed ({response.status_code})")
        if response.status_code >= 400:
            log.warning(
                "identity provider refused a request", extra={"path": url, "status": response.status_code}
            )
            raise SignInRefusedError(f"the provider refused the sign-in ({response.status_code})")
        body = response.json()
        if not isinstance(body, dict):
            raise SignInRefusedError("the provider's answer is not a JSON object")
        return body
