"""The ASGI app (Starlette): /healthz, /metrics, the review console (sign-in, conflicts, parked work,
connections, history) and its JSON API, behind the sign-in gate; connectors add their routes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from engine.observe.families import Source
from engine.ports import Clock, Policy, StateStore
from engine.settings import Web
from engine.web import auth, conflicts, connections, history, metrics, parked, sso
from engine.web.csrf import Guard, derive_key
from engine.web.pages import Pages
from engine.web.present import Presenter
from engine.web.sessions import SessionSigner
from engine.web.sso import IdentityProvider


@dataclass
class WebServices:
    store: StateStore
    policy: Policy
    clock: Clock
    connection: str = "default"
    #: The policy of each connection (a tenant's own overrides); None: `policy` serves them all.
    policies: Callable[[str], Policy] | None = None
    #: Extra checks for /healthz (e.g. the broker answers), by name; each returns True when healthy.
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    #: What /metrics shows beside the store's families: counters every process adds to (QuickBooks
    #: requests, 429s, budget waits), the queue, the metered reads; each called at scrape time.
    sources: Sequence[Source] = ()
    #: The configured secret_key: the CSRF and session keys are derived from it, so every process built
    #: from the same settings (a restart, another replica) accepts the others'. None: keys per process.
    secret_key: SecretStr | None = field(default=None, repr=False)
    #: The `web:` settings (public_url for the Origin check, api_token for scripts).
    web: Web = field(default_factory=Web)
    #: How often the token job renews access tokens (`schedule.token_refresh_minutes`), as the console says.
    token_refresh_minutes: float = 45.0
    #: How values, labels, times and record links are shown (the composition fills in QuickBooks' labels).
    present: Presenter | None = None
    #: Where the "Reconnect to QuickBooks" button goes (None: no QuickBooks section is configured).
    reconnect_path: str | None = None
    #: "Sign in with ..." through this identity provider (None: passwords only).
    identity: IdentityProvider | None = None

    def policy_of(self, connection: str) -> Policy:
        """The policy a conflict of `connection` is resolved under."""
        return self.policies(connection) if self.policies is not None else self.policy


def create_web_app(services: WebServices, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    guard = Guard(
        derive_key(services.secret_key, "web/csrf"), services.web.api_token, services.web.public_url
    )
    signer = SessionSigner(derive_key(services.secret_key, "web/session"))
    present = services.present or Presenter(currency=services.web.currency, time_zone=services.web.time_zone)
    pages = Pages(services, guard, present)

    def healthz(_: Request) -> Response:
        results = {"store": _store_ok(services)}
        for name, check in services.checks.items():
            try:
                results[name] = bool(check())
            except Exception:
                results[name] = False
        healthy = all(results.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unhealthy", "checks": results},
            status_code=200 if healthy else 503,
        )

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/metrics", metrics.endpoint(services)),
        *auth.routes(pages, signer),
        *(
            sso.routes(pages, signer, services.identity, derive_key(services.secret_key, "web/sso"))
            if services.identity
            else []
        ),
        *conflicts.routes(pages),
        *parked.routes(pages),
        *connections.routes(pages, services.reconnect_path),
        *history.routes(pages),
        *extra_routes,
    ]
    gate = Middleware(auth.SignInGate, services=services, signer=signer)
    return Starlette(routes=routes, middleware=[gate])


def _store_ok(services: WebServices) -> bool:
    try:
        with services.store.session() as s:
            s.get_connection(services.connection)
    except Exception:
        return False
    return True
