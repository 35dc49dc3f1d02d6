"""The web side of connecting a QuickBooks company: /connect redirects to Intuit, /callback finishes.

The CSRF `state` travels in a short-lived, HMAC-signed cookie; the callback refuses a state that does
not match it, an `error=` from Intuit (the user said no) and a code that cannot be exchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.quickbooks.oauth import OAuthClient
from connectors.quickbooks.settings import CALLBACK_PATH
from connectors.quickbooks.tokens import TokenCustodian
from engine.errors import ConfigurationError, LedgersyncError
from engine.settings import DEFAULT_TENANT

log = logging.getLogger(__name__)
COOKIE = "ledgersync_oauth_state"


def connect_routes(
    oauth: Callable[[str], OAuthClient],
    custodian: Callable[[str], TokenCustodian],
    connection_of: Callable[[str], str],
    secret: bytes | None = None,
) -> list[Route]:
    """/connect (`?tenant=T` connects tenant T's company, else the default tenant's; against the emulator
    `&realm=R` names the company) and its callback.
    `oauth`, `custodian` and `connection_of` take the tenant. `secret` signs the state cookie: give
    one derived from the configured secret_key, so a restart or another web replica between /connect
    and /callback still accepts it (None: one per process)."""
    key = secret or secrets.token_bytes(32)

    def sign(state: str, tenant: str) -> str:
        payload = f"{state}~{tenant}"
        return payload + "." + hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()

    def unsign(cookie: str | None) -> tuple[str, str] | None:
        payload, _, mac = (cookie or "").rpartition(".")
        good = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
        state, _, tenant = payload.partition("~")
        return (state, tenant) if state and tenant and hmac.compare_digest(mac, good) else None

    def start(request: Request) -> Response:
        tenant = request.query_params.get("tenant") or DEFAULT_TENANT
        try:
            connection_of(tenant)  # a name that can be a tenant's
            # `realm`: an emulator's company (its stand-in for the user's pick at Intuit's consent).
            authorization = oauth(tenant).authorization_request(realm=request.query_params.get("realm"))
        except ConfigurationError as error:
            return _page(f"Cannot connect: {error}", 400)
        response = RedirectResponse(authorization.url, status_code=302)
        response.set_cookie(
            COOKIE, sign(authorization.state, tenant), max_age=600, httponly=True, samesite="lax"
        )
        return response

    async def callback(request: Request) -> Response:
        expected = unsign(request.cookies.get(COOKIE))
        if expected is None:
            return _page("The connect request expired or did not come from this browser; start again.", 400)
        state, tenant = expected
        if "error" in request.query_params:
            return _page(f"QuickBooks did not connect: {request.query_params['error']}.", 400)
        try:
            client = oauth(tenant)
            parsed = client.parse_callback(str(request.url), state)
            tokens = await run_in_threadpool(client.exchange_code, parsed)
            connection = connection_of(tenant)
            stored = await run_in_threadpool(custodian(tenant).connect, connection, tokens, app_tenant=tenant)
        except LedgersyncError as error:
            log.warning("QuickBooks connect failed: %s", error, extra={"tenant": tenant})
            return _page(f"QuickBooks did not connect: {error}", 400)
        response = _page(f"Connected to QuickBooks company {stored.realm_id}.", 200)
        response.delete_cookie(COOKIE)
        return response

    return [Route("/connect", start), Route(CALLBACK_PATH, callback)]


def _page(message: str, status: int) -> HTMLResponse:
    from html import escape

    body = (
        f"<!doctype html><html lang='en'><title>ledgersync</title><main><h1>QuickBooks</h1>"
        f"<p>{escape(message)}</p><p><a href='/connections'>Back to the connections</a></p></main></html>"
    )
    return HTMLResponse(body, status_code=status)
