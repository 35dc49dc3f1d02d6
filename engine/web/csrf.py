"""Proof that a state-changing request comes from our own page, or from a script holding the API token.

Three checks, in order, on every POST that changes something (the review form and the JSON API):

1. Where it comes from: a browser says so in `Sec-Fetch-Site` and `Origin`. Anything but
   `same-origin` (or `none`, a request the user made directly), a `null` Origin, or an Origin that
   is not this app (its own address, or `web.public_url`) is refused with 403. Scripts send neither.
2. What it is: the JSON API takes only `Content-Type: application/json` (415 otherwise), which a
   page on another site cannot send without a CORS preflight that this app never grants.
3. Who may: a CSRF token, HMAC(key, nonce) where the nonce is a random per-browser cookie and the key
   is derived from the configured `secret_key` (so restarts and several web replicas agree); a page
   on another site can neither read the cookie nor compute the HMAC. Scripts instead send
   `Authorization: Bearer <web.api_token>`, which a browser never attaches by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

COOKIE = "ledgersync_csrf"
HEADER = "X-CSRF-Token"
_NONCE = re.compile(r"[A-Za-z0-9_-]{32,128}")


def derive_key(secret_key: SecretStr | None, purpose: str) -> bytes:
    """A key for one purpose, derived from the configured secret: the same in every process built from
    the same settings. Without a secret, a random one for this process (tokens die with it)."""
    if secret_key is None or not secret_key.get_secret_value():
        log.warning(
            "no secret_key configured: %s tokens will not survive a restart or reach a replica", purpose
        )
        return secrets.token_bytes(32)
    message = f"ledgersync/{purpose}".encode()
    return hmac.new(secret_key.get_secret_value().encode(), message, hashlib.sha256).digest()


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


@dataclass(frozen=True)
class Caller:
    """How a state-changing request proved itself, for the audit trail."""

    channel: str


WEB_PAGE = Caller("web page")
API_TOKEN = Caller("API token")


@dataclass(frozen=True)
class Guard:
    key: bytes
    api_token: SecretStr | None = None
    #: web.public_url, when the app is reached through another address than its own (a proxy).
    public_url: str | None = None

    def token(self, nonce: str) -> str:
        return hmac.new(self.key, b"csrf\0" + nonce.encode(), hashlib.sha256).hexdigest()

    def page_token(self, request: Request) -> tuple[str, str | None]:
        """The token for a page, and a new nonce to set as the cookie when the browser has none yet."""
        nonce = _nonce(request)
        if nonce is not None:
            return self.token(nonce), None
        fresh = secrets.token_urlsafe(32)
        return self.token(fresh), fresh

    def set_cookie(self, request: Request, response: Response, nonce: str | None) -> None:
        if nonce is None:
            return
        secure = request.url.scheme == "https" or (self.public_url or "").startswith("https:")
        # Strict: the cookie never rides along on a request another site starts.
        response.set_cookie(COOKIE, nonce, httponly=True, samesite="strict", secure=secure, path="/")

    def check_form(self, request: Request, submitted: str) -> Refusal | None:
        return self.check_origin(request) or self._check_token(request, submitted, "the form's token")

    def check_json(self, request: Request) -> Caller | Refusal:
        refusal = self.check_origin(request)
        if refusal is None and _media_type(request) != "application/json":
            got = request.headers.get("content-type") or "none"
            refusal = Refusal(415, f"send the body as JSON with Content-Type: application/json (got {got})")
        if refusal is not None:
            return refusal
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            if self.api_token is None:
                return Refusal(403, "no API token is configured (web.api_token); this bearer is refused")
            expected = self.api_token.get_secret_value().encode()
            if not expected or not hmac.compare_digest(credential.strip().encode(), expected):
                return Refusal(403, "wrong API token")
            return API_TOKEN
        refusal = self._check_token(request, request.headers.get(HEADER, ""), f"the {HEADER} header")
        return WEB_PAGE if refusal is None else refusal

    def check_origin(self, request: Request) -> Refusal | None:
        site = request.headers.get("sec-fetch-site")
        if site is not None and site.lower() not in ("same-origin", "none"):
            return Refusal(
                403,
                f"refused a {site} request (Sec-Fetch-Site: {site}): changes must come from this app's pages",
            )
        origin = request.headers.get("origin")
        if origin is None:
            return None
        if origin.strip().lower() == "null":
            return Refusal(
                403, "refused a request with Origin: null (a sandboxed page, a file or a redirect)"
            )
        allowed = {_origin(str(request.url))} | ({_origin(self.public_url)} if self.public_url else set())
        if _origin(origin) not in allowed:
            ours = " or ".join(sorted(allowed))
            return Refusal(403, f"refused a request from another site (Origin {origin}; this app is {ours})")
        return None

    def _check_token(self, request: Request, submitted: str, where: str) -> Refusal | None:
        nonce = _nonce(request)
        if not submitted:
            return Refusal(
                403, f"missing CSRF token in {where}; reload the page (scripts: Authorization: Bearer)"
            )
        if nonce is None or not hmac.compare_digest(submitted.encode(), self.token(nonce).encode()):
            return Refusal(403, f"stale or forged CSRF token in {where}; reload the page")
        return None


def _nonce(request: Request) -> str | None:
    value = request.cookies.get(COOKIE)
    return value if value is not None and _NONCE.fullmatch(value) else None


def _media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def _origin(url: str) -> str:
    """scheme://host[:port], lower-cased, default ports dropped (as browsers write Origin)."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return url
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")
