"""The emulator's Starlette application: OAuth, the Accounting API and the control API on one origin."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from connectors.quickbooks.emulator import api_routes, control_routes, faults, oauth_routes
from connectors.quickbooks.emulator.config import EmulatorConfig
from connectors.quickbooks.emulator.emulator import Emulator
from connectors.quickbooks.emulator.responses import TidMiddleware, fault_response


def create_app(config: EmulatorConfig | None = None, emulator: Emulator | None = None) -> Starlette:
    """Build the ASGI app; pass an `Emulator` to keep a handle on its state, or a `config` to make one."""
    emu = emulator or Emulator(config or EmulatorConfig())

    async def unknown(request: Request, exc: Exception) -> Response:
        return fault_response(emu, faults.no_resource(request.url.path))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return fault_response(emu, faults.unsupported(f"Method {request.method} is not supported here."))

    app = Starlette(
        routes=[*oauth_routes.routes(emu), *api_routes.routes(emu), *control_routes.routes(emu)],
        middleware=[Middleware(TidMiddleware)],
        exception_handlers={404: unknown, 405: not_allowed},
    )
    app.state.emulator = emu
    return app
