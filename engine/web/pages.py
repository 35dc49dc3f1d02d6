"""Rendering a console page: the template plus what every page shows (who is signed in, the CSRF token
for its forms, and the banner while a company needs re-authorization)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from engine.state import ConnectionStatus
from engine.web.csrf import Guard
from engine.web.present import Presenter
from engine.web.sessions import Session

if TYPE_CHECKING:
    from engine.web.app import WebServices

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
SESSION = "ledgersync.session"

#: The console's sections, in the order of its navigation bar.
NAV = (
    ("/conflicts", "Conflicts"),
    ("/parked", "Parked"),
    ("/connections", "Connections"),
    ("/history", "History"),
)


def current_session(request: Request) -> Session | None:
    """Who signed in (set by the sign-in gate); None for a script with the API token."""
    session = request.scope.get(SESSION)
    return session if isinstance(session, Session) else None


@dataclass(frozen=True)
class Pages:
    services: WebServices
    guard: Guard
    present: Presenter

    def render(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        token, nonce = self.guard.page_token(request)
        common = {
            "session": current_session(request),
            "token": token,
            "banner": self.needs_reauthorization() if current_session(request) else [],
            "nav": NAV,
            "path": request.url.path,
            "fmt": self.present,
            "sso": self.services.identity.label if self.services.identity else None,
        }
        response = templates.TemplateResponse(request, name, {**common, **context}, status_code=status)
        self.guard.set_cookie(request, response, nonce)
        # Pages show conflicted values: never kept by a shared cache, never framed by another site.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        return response

    def refused(self, request: Request, message: str, back: str, status: int = 403) -> Response:
        return self.render(request, "refused.html", {"message": message, "back": back}, status)

    def needs_reauthorization(self) -> list[str]:
        """The connections whose company must be reconnected (the banner on every page)."""
        with self.services.store.session() as s:
            return [c.id for c in s.list_connections() if c.status is not ConnectionStatus.CONNECTED]


def back_to(path: str, **params: str) -> RedirectResponse:
    """303 back to a page of ours, with messages for it in the query string."""
    query = "&".join(f"{k}={quote(v[:300])}" for k, v in params.items() if v)
    return RedirectResponse(path + (("&" if "?" in path else "?") + query if query else ""), status_code=303)


def local_path(target: str | None, default: str = "/conflicts") -> str:
    """`target` when it is a path on this site (never another host: no open redirect), else `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
