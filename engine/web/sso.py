"""Single sign-on for the console: "Sign in with <your company account>" through an identity provider
(OpenID Connect, connectors/oidc), mapped to a local login of the same name (its e-mail address).

The provider is a port: `start` gives the address to send the browser to and what to keep until it
comes back; `finish` turns the provider's answer into a verified e-mail address, or raises
SignInRefusedError. What is kept travels in a short-lived cookie signed here, so another browser's
answer, or one that went through no /login/sso here, is refused. Only a login an admin made
(`ledgersync users add maria@example.com --sso`) may sign in this way: the provider says who someone
is, ledgersync's users table says whether they may review.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from engine.errors import LedgersyncError
from engine.web.auth import secure_cookies
from engine.web.pages import Pages, local_path
from engine.web.sessions import SessionSigner

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

START, CALLBACK = "/login/sso", "/login/sso/callback"
COOKIE = "ledgersync_sso"
#: How long a sign-in may take at the provider.
KEPT_SECONDS = 600


class SignInRefusedError(LedgersyncError):
    """The provider's answer does not prove who signed in (expired, forged, for another app, no e-mail)."""


class IdentityProvider(Protocol):
    @property
    def label(self) -> str:
        """What the button says after "Sign in with": "Google", "Microsoft", "your company account"."""
        ...

    def start(self, redirect_uri: str) -> tuple[str, str]:
        """The provider's address to send the browser to, and what to keep until it comes back."""
        ...

    def finish(self, answer: Mapping[str, str], kept: str, redirect_uri: str) -> str:
        """The verified e-mail address of who signed in; SignInRefusedError otherwise."""
        ...


def routes(pages: Pages, signer: SessionSigner, provider: IdentityProvider, key: bytes) -> list[BaseRoute]:
    services = pages.services
    redirect_uri = services.web.base_url + CALLBACK

    def seal(kept: str, target: str) -> str:
        body = json.dumps({"kept": kept, "next": target})
        return body + "|" + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()

    def unseal(cookie: str | None) -> tuple[str, str] | None:
        body, _, mac = (cookie or "").rpartition("|")
        if not body or not hmac.compare_digest(mac, hmac.new(key, body.encode(), hashlib.sha256).hexdigest()):
            return None
        data = json.loads(body)
        return str(data["kept"]), local_path(str(data["next"]))

    def refused(request: Request, message: str) -> Response:
        context = {"next": "/conflicts", "error": message, "login": "", "signed_out": False}
        response = pages.render(request, "login.html", context, status=401)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def start(request: Request) -> Response:
        try:
            address, kept = await run_in_threadpool(provider.start, redirect_uri)
        except LedgersyncError as error:
            return refused(request, f"{provider.label} cannot be reached now: {error}")
        response = RedirectResponse(address, status_code=302)
        target = local_path(request.query_params.get("next"))
        # Lax: the cookie must come back with the provider's redirect, a top-level GET from its site.
        response.set_cookie(
            COOKIE, seal(kept, target), max_age=KEPT_SECONDS, httponly=True, samesite="lax", path="/"
        )
        return response

    async def callback(request: Request) -> Response:
        opened = unseal(request.cookies.get(COOKIE))
        if opened is None:
            return refused(request, "That sign-in did not start in this browser, or took too long; retry.")
        kept, target = opened
        try:
            email = await run_in_threadpool(provider.finish, dict(request.query_params), kept, redirect_uri)
        except LedgersyncError as error:
            log.warning("single sign-on refused: %s", error)
            return refused(request, f"{provider.label} did not sign you in: {error}")
        with services.store.session() as s:
            user = s.get_user(email)
            if user is not None:
                s.record_login(user.login, services.clock.now())
        if user is None:
            return refused(request, f"{email} has no login here: an admin adds it (`ledgersync users add`).")
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(COOKIE, path="/")
        secure = secure_cookies(request, services)
        response.set_cookie(**signer.cookie(user, services.clock.now(), secure=secure))
        return response

    return [Route(START, start), Route(CALLBACK, callback)]
