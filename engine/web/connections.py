"""Connections on the console: each company's app tenant, status, token expiry, when each side last
synced, and a "Reconnect to QuickBooks" button (`/connect?tenant=T`) while a company needs
re-authorization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.model import Side
from engine.settings import DEFAULT_TENANT
from engine.state import Connection, ConnectionStatus
from engine.web.pages import Pages

STATUS_WORDS = {
    ConnectionStatus.CONNECTED: "Connected",
    ConnectionStatus.NEEDS_REAUTH: "Needs reconnecting: QuickBooks no longer accepts this authorization",
    ConnectionStatus.REVOKED: "Disconnected: the company revoked ledgersync's access",
}


@dataclass(frozen=True)
class Row:
    connection: Connection
    status: str
    needs_reconnect: bool
    synced: dict[tuple[Side, str], datetime]


def routes(pages: Pages, reconnect_path: str | None) -> list[BaseRoute]:
    services = pages.services

    def page(request: Request) -> Response:
        with services.store.session() as s:
            rows = [
                Row(
                    connection=c,
                    status=STATUS_WORDS.get(c.status, str(c.status)),
                    needs_reconnect=c.status is not ConnectionStatus.CONNECTED,
                    synced=s.last_synced(c.id),
                )
                for c in s.list_connections()
            ]
        context = {
            "rows": rows,
            "reconnect_path": reconnect_path,
            "sides": (Side.APP, Side.QUICKBOOKS),
            "side_names": {Side.APP: "the app", Side.QUICKBOOKS: "QuickBooks"},
            "default_tenant": DEFAULT_TENANT,
            "now": services.clock.now(),
            "refresh_minutes": f"{services.token_refresh_minutes:g}",
        }
        return pages.render(request, "connections.html", context)

    return [Route("/connections", page)]
