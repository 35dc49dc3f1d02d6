"""A small OpenID Connect provider for tests: discovery, an authorize endpoint that consents at once
as the e-mail it is told, a token endpoint that signs ID tokens (RS256), and its published keys. Knobs
spoil the token on purpose (another audience, another nonce, expired, signed by another key)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID, CLIENT_SECRET = "console-client", "console-secret"


@dataclass
class FakeProvider:
    issuer: str = ""
    email: str = "maria@example.com"
    email_verified: bool = True
    #: Spoil the next tokens: "audience", "nonce", "expired", "key" (signed by a key it never published).
    spoil: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    codes: dict[str, str] = field(default_factory=dict)

    def app(self) -> Starlette:
        def discovery(_: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                }
            )

        def authorize(request: Request) -> Response:
            params = request.query_params
            assert params["client_id"] == CLIENT_ID and "openid" in params["scope"].split()
            code = f"code-{len(self.codes)}"
            self.codes[code] = params["nonce"]
            answer = {"code": code, "state": params["state"]}
            return RedirectResponse(f"{params['redirect_uri']}?{urlencode(answer)}", status_code=302)

        async def token(request: Request) -> Response:
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {basic}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            form = await request.form()
            nonce = self.codes.pop(str(form["code"]), None)
            if nonce is None:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": "user-1",
                "aud": "another-client" if self.spoil == "audience" else CLIENT_ID,
                "iat": now - 10,
                "exp": now - 5 if self.spoil == "expired" else now + 300,
                "nonce": "another-nonce" if self.spoil == "nonce" else nonce,
                "email": self.email,
                "email_verified": self.email_verified,
            }
            signer = RSAKey.generate_key(2048, parameters={"kid": "k1"}) if self.spoil == "key" else self.key
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, signer)
            return JSONResponse({"access_token": "at", "token_type": "Bearer", "id_token": id_token})

        def jwks(_: Request) -> Response:
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
                Route("/jwks", jwks),
            ]
        )
