"""Running the emulator: in-process on a free port for tests and other code, or in the foreground for the CLI.

Use from tests or other code::

    from connectors.quickbooks.emulator import EmulatorConfig, running_emulator

    with running_emulator(EmulatorConfig(minute_seconds=1.0)) as qbo:
        tokens = qbo.connect()                     # the real OAuth flow, auto-consented
        qbo.api_base                               # http://127.0.0.1:<port>/v3, for python-quickbooks
        qbo.discovery_url                          # what intuit-oauth takes as its `environment`
        qbo.advance_clock(3601)                    # the access token is now expired
        qbo.inject_fault("server_error", count=2)  # the next two API calls answer 503
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from connectors.quickbooks.emulator.app import create_app
from connectors.quickbooks.emulator.config import DEFAULT_HOST, DEFAULT_PORT, EmulatorConfig
from connectors.quickbooks.emulator.emulator import Emulator


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    realm_id: str
    expires_in: int
    x_refresh_token_expires_in: int


class EmulatorHandle:
    """A running emulator: its addresses, its seeded credentials, and the control API as methods."""

    def __init__(self, base_url: str, emulator: Emulator) -> None:
        self.base_url = base_url
        self.emulator = emulator
        self.config = emulator.config
        self._http = httpx.Client(base_url=base_url, timeout=30.0)

    @property
    def realm_id(self) -> str:
        return self.config.realm_id

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    @property
    def api_base(self) -> str:
        """Where `/company/{realmId}/...` hangs: replaces https://quickbooks.api.intuit.com/v3."""
        return self.base_url + "/v3"

    @property
    def company_url(self) -> str:
        return f"{self.api_base}/company/{self.realm_id}"

    @property
    def discovery_url(self) -> str:
        return self.base_url + "/.well-known/openid_configuration"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth2/v1/tokens/bearer"

    def connect(
        self,
        redirect_uri: str = "http://localhost:8000/callback",
        scope: str = "com.intuit.quickbooks.accounting",
    ) -> Tokens:
        """Run the authorization-code flow (consent is automatic) and return fresh tokens."""
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": scope,
            "redirect_uri": redirect_uri,
            "state": "emulator",
        }
        consent = self._http.get("/connect/oauth2", params=params)
        query = parse_qs(urlsplit(consent.headers["location"]).query)
        if "code" not in query:
            raise RuntimeError(f"consent refused: {query.get('error')}")
        answer = self._http.post(
            "/oauth2/v1/tokens/bearer",
            data={"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect_uri},
            auth=(self.client_id, self.client_secret),
        )
        answer.raise_for_status()
        body = answer.json()
        return Tokens(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            realm_id=query["realmId"][0],
            expires_in=body["expires_in"],
            x_refresh_token_expires_in=body["x_refresh_token_expires_in"],
        )

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(method, "/_emulator" + path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._control("POST", "/clock/advance", {"seconds": seconds})

    def disconnect(self) -> dict[str, Any]:
        """As if the user clicked Disconnect in QuickBooks: every token of the realm stops working."""
        return self._control("POST", "/disconnect")

    def inject_fault(
        self,
        kind: str,
        count: int = 1,
        *,
        status: int = 503,
        delay: float = 0.0,
        path_contains: str = "",
        seconds: float | None = None,
    ) -> dict[str, Any]:
        """Arm a fault (rate_limit, server_error, timeout_after_commit, latency, webhook_drop, _duplicate,
        _reorder) for the next `count` matches, or for every match during `seconds`."""
        body = {
            "kind": kind,
            "count": count,
            "status": status,
            "delay": delay,
            "path_contains": path_contains,
            "seconds": seconds,
        }
        return self._control("POST", "/faults", body)

    def faults(self) -> dict[str, Any]:
        """Armed faults, how often each kind fired, and the requests held back right now."""
        return self._control("GET", "/faults")

    def clear_faults(self) -> None:
        self._control("DELETE", "/faults")

    def request_log(self, entries: bool = False) -> dict[str, Any]:
        return self._control("GET", "/requests?entries=1" if entries else "/requests")

    def clear_request_log(self) -> None:
        self._control("DELETE", "/requests")

    def reset_throttle(self) -> None:
        self._control("POST", "/throttle/reset")

    def webhook_deliveries(self) -> dict[str, Any]:
        return self._control("GET", "/webhooks")

    def read_record(self, entity: str, entity_id: str) -> dict[str, Any]:
        """Read without going through (or being counted by) the API."""
        return dict(self._control("GET", f"/records/{entity}/{entity_id}")[entity])

    def list_records(self, entity: str) -> list[dict[str, Any]]:
        """Every record of an entity, inactive ones included, without going through the API."""
        return list(self._control("GET", f"/records/{entity}")[entity])

    def create_record(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._control("POST", f"/records/{entity}", body)[entity])

    def edit_record(self, entity: str, entity_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields as an accountant in the QuickBooks UI would: no SyncToken needed, version bumps."""
        return dict(self._control("POST", f"/records/{entity}/{entity_id}", changes)[entity])

    def delete_record(self, entity: str, entity_id: str) -> dict[str, Any]:
        """Delete a transaction, or make a name-list record inactive, as a user would."""
        return dict(self._control("DELETE", f"/records/{entity}/{entity_id}")[entity])

    def close(self) -> None:
        self._http.close()


def _server(emulator: Emulator, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(emulator=emulator),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


@contextmanager
def running_emulator(
    config: EmulatorConfig | None = None, *, host: str = DEFAULT_HOST, port: int = 0
) -> Iterator[EmulatorHandle]:
    """Start an emulator in a background thread (port 0: a free one), yield its handle, stop it on exit."""
    emulator = Emulator(config or EmulatorConfig())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = _server(emulator, host, bound_port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="qbo-emulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the QuickBooks emulator did not start")
            time.sleep(0.01)
        emulator.start()
        handle = EmulatorHandle(f"http://{host}:{bound_port}", emulator)
        try:
            yield handle
        finally:
            handle.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        emulator.stop()
        sock.close()


def serve(config: EmulatorConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Run in the foreground until interrupted (the `ledgersync emulator` command)."""
    emulator = Emulator(config)
    emulator.start()
    try:
        _server(emulator, host, port).run()
    finally:
        emulator.stop()
