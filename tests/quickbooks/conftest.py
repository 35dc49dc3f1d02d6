"""Fixtures for the QuickBooks transport tests: a running emulator and a `Rig` wiring our side to it."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from connectors.quickbooks.budget import MemoryRateBudget, RateBudget
from connectors.quickbooks.client import QboClient, new_http_client
from connectors.quickbooks.crypto import TokenCipher, generate_key
from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from connectors.quickbooks.emulator.server import EmulatorHandle
from connectors.quickbooks.oauth import OAuthClient, TokenSet
from connectors.quickbooks.settings import QboSettings
from connectors.quickbooks.tokens import Notifier, TokenCustodian
from engine.clock import FakeClock
from engine.ports import StateStore
from tests.support import stores
from tests.support.stores import fresh_store

store = stores.store
store_backend = stores.store_backend


@contextmanager
def running_receiver(app: Starlette) -> Iterator[str]:
    """Serve `app` on a free port in a background thread; yields its base URL."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without it
    # every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class Rig:
    """Our side of the wire, pointed at one emulator: settings, a fake clock, the store, workers."""

    def __init__(self, qbo: EmulatorHandle, state: StateStore, stack: ExitStack, **settings: Any) -> None:
        self.qbo = qbo
        self.store = state
        self.stack = stack
        self.key = generate_key()
        self.clock = FakeClock(datetime.now(UTC))
        self.slept: list[float] = []
        self.settings = QboSettings(
            environment=qbo.base_url,
            client_id=qbo.client_id,
            client_secret=qbo.client_secret,
            **{"backoff_base_seconds": 0.0, **settings},
        )
        self.http = self.new_http()
        self.oauth = OAuthClient(self.http, self.settings, self.clock)
        self.custodian = self.new_custodian()
        self.budget: RateBudget = MemoryRateBudget(self.settings)

    def new_http(self, **kwargs: Any) -> httpx.Client:
        return self.stack.enter_context(new_http_client(self.settings, **kwargs))

    def new_custodian(self, notifier: Notifier | None = None) -> TokenCustodian:
        oauth = OAuthClient(self.new_http(), self.settings, self.clock)
        return TokenCustodian(
            self.store, oauth, TokenCipher(self.key), self.clock, self.settings, notifier=notifier
        )

    def connect(self, connection_id: str = "c1", custodian: TokenCustodian | None = None) -> TokenSet:
        callback = self.oauth.consent_automatically(self.oauth.authorization_request())
        tokens = self.oauth.exchange_code(callback)
        (custodian or self.custodian).connect(connection_id, tokens)
        return tokens

    def client(
        self, connection_id: str = "c1", *, custodian: TokenCustodian | None = None, **kwargs: Any
    ) -> QboClient:
        return QboClient(
            kwargs.pop("http", self.http),
            self.settings,
            self.qbo.realm_id,
            connection_id,
            custodian or self.custodian,
            kwargs.pop("budget", self.budget),
            sleep=kwargs.pop("sleep", self.slept.append),
            **kwargs,
        )

    def count(self, entity: str = "Customer") -> int:
        """Records in the emulator, read through the control API (not metered, not throttled)."""
        records = self.qbo.emulator.store
        with records.lock:
            return len(records.all(entity))


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Override in a test module (or parametrize) for another emulator setup."""
    return EmulatorConfig()


@pytest.fixture
def qbo(emulator_config: EmulatorConfig) -> Iterator[EmulatorHandle]:
    with running_emulator(emulator_config) as handle:
        yield handle


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[StateStore]:
    with fresh_store("sqlite", tmp_path) as fresh:
        yield fresh


@pytest.fixture
def rig(qbo: EmulatorHandle, sqlite_store: StateStore) -> Iterator[Rig]:
    with ExitStack() as stack:
        yield Rig(qbo, sqlite_store, stack)


@pytest.fixture
def redis_prefix() -> str:
    return f"test-ledgersync:{secrets.token_hex(6)}"
