"""Running the emulator: in-process on a free port for tests and other code, or in the foreground for the CLI.

Use from tests or other code::

    from connectors.quickbooks.emulator import EmulatorConfig, running_emulator

    with running_emulator(EmulatorConfig(minute_seconds=1.0)) as qbo:
        tokens = qbo.connect()                     # the real OAuth flow, auto-consented
        qbo.api_base                               # http://127.0.0.1:<port>/v3, for python-quickbooks
        qbo.discovery_url                          # what intuit-oauth takes as its `environment`
        qbo.advance_clock(3601)                    # the access token is now expired
        qbo.inject_fault("server_error", count=2)  # the next two API calls answer 503
        other = qbo.add_company()                  # a second company: its own realm, data, limits
        other.connect(), other.company_url, other.storm(30), other.disconnect()
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from connectors.quickbooks.emulator.app import create_app
from connectors.quickbooks.emulator.config import DEFAULT_HOST, DEFAULT_PORT, EmulatorConfig
from connectors.quickbooks.emulator.emulator import Emulator
from connectors.quickbooks.emulator.handle import CompanyHandle, EmulatorHandle, Tokens

__all__ = ["CompanyHandle", "EmulatorHandle", "Tokens", "running_emulator", "serve"]


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
