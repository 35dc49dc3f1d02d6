"""The ASGI app (Starlette): /healthz, /metrics, /conflicts (HTML and JSON); connectors add their routes."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from engine.ports import Clock, Policy, StateStore
from engine.web import conflicts, metrics


@dataclass
class WebServices:
    store: StateStore
    policy: Policy
    clock: Clock
    connection: str = "default"
    #: Extra checks for /healthz (e.g. the broker answers), by name; each returns True when healthy.
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    #: Counters the connectors keep (API calls by class, rate-budget waits, token age), for /metrics.
    gauges: Callable[[], dict[str, float]] | None = None
    #: Signs the review forms (CSRF); new per process unless given.
    form_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))


def create_web_app(services: WebServices, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
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
        *conflicts.routes(services),
        *extra_routes,
    ]
    return Starlette(routes=routes)


def _store_ok(services: WebServices) -> bool:
    try:
        with services.store.session() as s:
            s.get_connection(services.connection)
    except Exception:
        return False
    return True
