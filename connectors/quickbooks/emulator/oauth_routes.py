"""Intuit's OAuth 2.0 endpoints on the emulator: discovery, consent, token, revoke, JWKS and userinfo."""

from __future__ import annotations

import base64
import binascii
import html
import json
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.quickbooks.emulator.emulator import Emulator
from connectors.quickbooks.emulator.oauth import OAuthError, TokenIssue
from connectors.quickbooks.emulator.requestlog import OAUTH, LoggedRequest
from connectors.quickbooks.emulator.responses import json_response

AUTHORIZE_PATH = "/connect/oauth2"
#: The emulator's stand-in for Intuit's company picker: the realm id of the company that consents.
REALM_HINT = "realm"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/v2/oauth2/tokens/revoke"
JWKS_PATH = "/op/v1/jwks"
USERINFO_PATH = "/v1/openid_connect/userinfo"
DISCOVERY_PATHS = (
    "/.well-known/openid_configuration",
    "/.well-known/openid_configuration/",
    "/.well-known/openid_sandbox_configuration",
    "/.well-known/openid_sandbox_configuration/",
)
NO_CACHE = {"cache-control": "no-cache, no-store", "pragma": "no-cache"}


def discovery_document(base_url: str) -> dict[str, object]:
    return {
        "issuer": f"{base_url}/op/v1",
        "authorization_endpoint": base_url + AUTHORIZE_PATH,
        "token_endpoint": base_url + TOKEN_PATH,
        "userinfo_endpoint": base_url + USERINFO_PATH,
        "revocation_endpoint": base_url + REVOKE_PATH,
        "jwks_uri": base_url + JWKS_PATH,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    }


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _basic_auth(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _token_body(issue: TokenIssue, hard_expiry: bool) -> dict[str, object]:
    body: dict[str, object] = {
        "token_type": "bearer",
        "access_token": issue.access_token,
        "refresh_token": issue.refresh_token,
        "expires_in": issue.expires_in,
        "x_refresh_token_expires_in": issue.refresh_expires_in,
    }
    if hard_expiry:
        body["x_refresh_token_hard_expires_in"] = issue.hard_expires_in
    return body


def _picker(consent_url: str, emulator: Emulator) -> str:
    """The company picker: a link per company, each the consent URL with that company's `realm`."""
    separator = "&" if "?" in consent_url else "?"
    links = "".join(
        f'<li><a href="{html.escape(consent_url + separator + urlencode({REALM_HINT: realm}))}">'
        f"{html.escape(company.config.company_name)} ({html.escape(realm)})</a></li>"
        for realm, company in list(emulator.companies.items())
    )
    return f"<!doctype html><title>Select a company</title><h1>Select a company</h1><ul>{links}</ul>"


def routes(emulator: Emulator) -> list[Route]:  # noqa: PLR0915 - one closure per endpoint
    authority = emulator.authority

    def log(request: Request, endpoint: str, response: Response) -> Response:
        emulator.requests.record(
            LoggedRequest(request.method, request.url.path, endpoint, OAUTH, response.status_code)
        )
        return response

    async def discovery(request: Request) -> Response:
        return json_response(discovery_document(_base_url(request)))

    async def authorize(request: Request) -> Response:
        params = request.query_params
        redirect_uri = params.get("redirect_uri", "")
        allow = emulator.config.redirect_uri_allowlist
        if params.get("client_id") != emulator.config.client_id:
            return log(request, "authorize", PlainTextResponse("Invalid client_id", status_code=400))
        if not redirect_uri or (allow and redirect_uri not in allow):
            # Intuit shows an error page instead of redirecting to an unregistered URI.
            return log(
                request, "authorize", PlainTextResponse("The redirect_uri is not registered", status_code=400)
            )
        # Intuit asks the user which company to connect; here the `realm` parameter answers for them,
        # and without it the first company is picked (or, with `company_picker`, the user is asked).
        if REALM_HINT not in params and emulator.config.company_picker and len(emulator.companies) > 1:
            return log(request, "authorize", HTMLResponse(_picker(str(request.url), emulator)))
        company = emulator.companies.get(params[REALM_HINT]) if REALM_HINT in params else emulator.default
        if company is None:
            return log(
                request, "authorize", PlainTextResponse(f"No company {params[REALM_HINT]}", status_code=400)
            )
        state = params.get("state")
        answer: dict[str, str]
        if params.get("response_type") != "code":
            answer = {"error": "unsupported_response_type"}
        elif not params.get("scope"):
            answer = {"error": "invalid_scope"}
        elif emulator.config.deny_consent:
            answer = {"error": "access_denied"}
        else:
            with authority.lock:
                code = authority.issue_code(redirect_uri, params["scope"], company.realm_id)
            answer = {"code": code, "realmId": company.realm_id}
            emulator.changed()
        if state is not None:
            answer["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        return log(request, "authorize", RedirectResponse(redirect_uri + separator + urlencode(answer), 302))

    async def token(request: Request) -> Response:
        hard = request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true"
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        try:
            with authority.lock:
                authority.check_client(*_basic_auth(request))
                grant_type = form.get("grant_type")
                if grant_type == "authorization_code":
                    if not form.get("code"):
                        raise OAuthError(400, "invalid_request", "code is missing")
                    issue = authority.exchange_code(form.get("code"), form.get("redirect_uri"))
                elif grant_type == "refresh_token":
                    if not form.get("refresh_token"):
                        raise OAuthError(400, "invalid_request", "refresh_token is missing")
                    issue = authority.refresh(form.get("refresh_token"))
                else:
                    raise OAuthError(400, "unsupported_grant_type")
            response = json_response(_token_body(issue, hard), 200, NO_CACHE)
        except OAuthError as exc:
            response = json_response(exc.body(), exc.status, NO_CACHE)
        emulator.changed()
        return log(request, "token", response)

    async def revoke(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", errors="replace")
        try:
            with authority.lock:
                authority.check_client(*_basic_auth(request))
                try:
                    payload = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    payload = dict(parse_qsl(raw))  # node-quickbooks sends a form body
                token_value = payload.get("token") if isinstance(payload, dict) else None
                authority.revoke(token_value)
            response: Response = Response(b"", status_code=200)
        except OAuthError as exc:
            response = json_response(exc.body(), exc.status)
        emulator.changed()
        return log(request, "revoke", response)

    async def jwks(request: Request) -> Response:
        return json_response({"keys": []})

    async def userinfo(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
        realm, _ = authority.authenticate(bearer)
        if realm is None:
            return json_response({"error": "invalid_token"}, 401)
        return json_response(
            {"sub": f"emulated-user-{realm}", "email": "admin@example.com", "emailVerified": True}
        )

    out = [Route(path, discovery, methods=["GET"]) for path in DISCOVERY_PATHS]
    out += [
        Route(AUTHORIZE_PATH, authorize, methods=["GET"]),
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(REVOKE_PATH, revoke, methods=["POST"]),
        Route(JWKS_PATH, jwks, methods=["GET"]),
        Route(USERINFO_PATH, userinfo, methods=["GET"]),
    ]
    return out
