"""Signing in to the console: the gate every request passes, and the /login and /logout pages.

The gate lets through only /healthz, the QuickBooks webhook receiver and the sign-in page itself.
Everything else needs a session (a signed cookie, engine/web/sessions.py) whose user still exists with
the same password; the JSON API and /metrics also take `Authorization: Bearer <web.api_token>` for
scripts. Without either, a page redirects to /login and the API answers 401. Reconnecting a company
(/connect) takes an admin.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.accounts import SignInRefused, sign_in
from engine.web.pages import SESSION, Pages, current_session, local_path
from engine.web.sessions import COOKIE, Session, SessionSigner, fingerprint

if TYPE_CHECKING:
    from engine.web.app import WebServices

log = logging.getLogger(__name__)

#: Paths anyone may reach: health checks, QuickBooks' webhook deliveries (signed by QuickBooks), sign-in
#: (with a password, or through the identity provider: engine/web/sso.py).
OPEN = ("/healthz", "/login", "/login/sso", "/login/sso/callback")
OPEN_PREFIXES = ("/webhooks/",)
#: Paths that take an admin: reconnecting a company starts a new grant for the whole sync.
ADMIN = ("/connect",)
#: Paths a script may call with the API token instead of a session.
TOKEN_PREFIXES = ("/api/", "/metrics")


@dataclass
class SignInGate:
    """ASGI middleware: refuses every request that is neither open, signed in, nor a script's token."""

    app: ASGIApp
    services: WebServices
    signer: SessionSigner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in OPEN or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        bearer = self._bearer(request) if path.startswith(TOKEN_PREFIXES) else None
        if bearer is not None:
            if bearer:
                await self.app(scope, receive, send)
                return
            message = (
                "wrong API token"
                if self.services.web.api_token is not None
                else "no API token is configured (web.api_token); this bearer is refused"
            )
            await JSONResponse({"error": message}, status_code=403)(scope, receive, send)
            return
        session = await run_in_threadpool(self.session, request)
        if session is None:
            await self._refuse(request)(scope, receive, send)
            return
        if path in ADMIN and not session.is_admin:
            message = "Only an admin can reconnect a QuickBooks company; ask one to press Reconnect."
            await PlainTextResponse(message, status_code=403)(scope, receive, send)
            return
        scope[SESSION] = session
        await self.app(scope, receive, send)

    def _bearer(self, request: Request) -> bool | None:
        """None: no bearer sent; else whether it is the configured API token."""
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        expected = self.services.web.api_token
        if expected is None or not expected.get_secret_value():
            return False
        return hmac.compare_digest(credential.strip().encode(), expected.get_secret_value().encode())

    def session(self, request: Request) -> Session | None:
        """The request's session, if its user still exists with the password it signed in with."""
        session = self.signer.open(request.cookies.get(COOKIE), self.services.clock.now())
        if session is None:
            return None
        with self.services.store.session() as s:
            user = s.get_user(session.login)
        if user is None or fingerprint(user) != session.fingerprint:
            return None
        return Session(user.login, user.role, session.issued, session.fingerprint)

    def _refuse(self, request: Request) -> Response:
        if request.url.path.startswith(TOKEN_PREFIXES):
            message = "sign in first, or send Authorization: Bearer <web.api_token>"
            return JSONResponse({"error": message}, status_code=401)
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return PlainTextResponse("Sign in first: your session ended or never began.", status_code=401)


def routes(pages: Pages, signer: SessionSigner) -> list[BaseRoute]:
    services = pages.services

    def login_page(request: Request) -> Response:
        target = local_path(request.query_params.get("next"))
        if current_session(request) is not None:
            return RedirectResponse(target, status_code=303)
        context = {"next": target, "error": None, "login": "", "signed_out": "out" in request.query_params}
        return pages.render(request, "login.html", context)

    async def login(request: Request) -> Response:
        form = await request.form()
        target = local_path(str(form.get("next") or ""))
        refusal = pages.guard.check_form(request, str(form.get("token", "")))
        if refusal is not None:
            return pages.refused(request, refusal.message, "/login", refusal.status)
        login, password = str(form.get("login") or ""), str(form.get("password") or "")

        def attempt() -> object:
            with services.store.session() as s:
                return sign_in(s, login, password, services.clock.now())

        result = await run_in_threadpool(attempt)
        if isinstance(result, SignInRefused):
            log.warning("sign-in refused", extra={"login": login[:80]})
            context = {"next": target, "error": result.message, "login": login[:80], "signed_out": False}
            return pages.render(request, "login.html", context, status=401)
        from engine.state import User

        assert isinstance(result, User)
        response = RedirectResponse(target, status_code=303)
        secure = secure_cookies(request, services)
        response.set_cookie(**signer.cookie(result, services.clock.now(), secure=secure))
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        refusal = pages.guard.check_form(request, str(form.get("token", "")))
        if refusal is not None:
            return pages.refused(request, refusal.message, "/conflicts", refusal.status)
        response = RedirectResponse("/login?out=1", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def secure_cookies(request: Request, services: WebServices) -> bool:
    """Cookies only over https when the browser reaches us over https (directly or through a proxy)."""
    return request.url.scheme == "https" or (services.web.public_url or "").startswith("https:")
