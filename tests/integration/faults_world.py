"""The fault campaign's world: the harness's world (emulator, example app and state store on PostgreSQL,
a claimed Redis database), plus webhooks from the emulator to the web process, a short QuickBooks
timeout (so a timeout after commit costs seconds, not minutes), the app-history triggers, and the
process-level faults: which worker is waiting on a held request, kill -9, a flushed Redis.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

from connectors.quickbooks.emulator import EmulatorConfig
from engine.accounts import add_user
from engine.state import ConnectionStatus, Role
from tests.integration import app_history
from tests.integration.harness import ADMIN, ADMIN_PASSWORD, World, world

#: Seconds the workers wait for QuickBooks; a held answer outlasts it by HOLD_MARGIN.
QUICKBOOKS_TIMEOUT = 2.0
HOLD_MARGIN = 1.5


@dataclass
class Campaign:
    """The world, with what only the campaign needs: the web address and the Redis database."""

    world: World
    web_url: str
    broker_url: str

    def flush_redis(self) -> None:
        """FLUSHDB on the workers' Redis database: every queued message, lease and budget is gone."""
        client = redis.Redis.from_url(self.broker_url)
        try:
            client.flushdb()
        finally:
            client.close()

    def reconnect(self) -> None:
        """Reconnect as a user does in a browser: the web app's /connect, QuickBooks' consent (the
        emulator gives it at once), back to the web app's /callback."""
        with self.world.runtime.store.session() as s:
            if s.get_user(ADMIN) is None:
                add_user(s, ADMIN, Role.ADMIN, ADMIN_PASSWORD, datetime.now(UTC))
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            login = browser.get(f"{self.web_url}/login")
            token = re.search(r'name="token" value="([0-9a-f]+)"', login.text)
            assert token is not None, login.text
            form = {"token": token.group(1), "login": ADMIN, "password": ADMIN_PASSWORD}
            signed_in = browser.post(f"{self.web_url}/login", data=form)
            assert signed_in.status_code == 200, signed_in.text
            page = browser.get(f"{self.web_url}/connect")
        assert page.status_code == 200 and "Connected" in page.text, page.text

    def connection_status(self) -> ConnectionStatus | None:
        with self.world.runtime.store.session() as s:
            found = s.get_connection(self.world.connection)
        return found.status if found else None


@contextlib.contextmanager
def campaign_world(tmp_path: Path) -> Iterator[Campaign]:
    """A distributed world whose emulator sends webhooks to the web process; every process is stopped
    on exit (the harness prints their logs when the body fails)."""
    emulator = EmulatorConfig(
        minute_seconds=1.0, webhook_batch_window=0.3, webhook_retry_delays=(0.5, 1.0, 2.0)
    )
    quickbooks = {
        "throttle_penalty_seconds": 0.5,
        "backoff_max_seconds": 2,
        "timeout_seconds": QUICKBOOKS_TIMEOUT,
    }
    with world(
        tmp_path,
        distributed=True,
        emulator=emulator,
        webhooks=True,
        oauth_via_web=True,
        quickbooks=quickbooks,
    ) as w:
        app_history.install(w.app_url)
        assert w.broker_url is not None
        yield Campaign(w, w.web_url, w.broker_url)


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process `pid` holds open (from /proc: no extra library)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            parts = line.split()
            if parts[9] in inodes:
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def holder(workers: dict[str, subprocess.Popen[bytes]], client: str) -> str | None:
    """Which live worker opened the connection `client` ("host:port") the emulator is holding."""
    port = int(client.rsplit(":", 1)[1])
    for name, process in workers.items():
        if process.poll() is None:
            with contextlib.suppress(OSError):
                if port in local_ports(process.pid):
                    return name
    return None


def kill_9(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
