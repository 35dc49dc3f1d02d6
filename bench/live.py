"""A running ledgersync, as an operator starts it: embedded (`ledgersync run` on SQLite) or distributed
(`ledgersync worker` processes, `scheduler` and `web` on PostgreSQL and Redis), with the emulator
delivering webhooks to its receiver, on a world of linked customers (bench.seed).

Distributed, the app is set up the way PostgreSQL is meant to be run: the outbox triggers installed
(`ledgersync app install-triggers`) and every entity read with `capture: {mode: outbox}`, so the
scheduler LISTENs for the triggers' NOTIFY (`capture="poll"` keeps the example's polling instead).
Embedded (SQLite) reads by polling, hurried by the one-second probe.

The benchmark watches from outside: the emulator's control API (not metered, not throttled) and the
app's own table. Every process started here is stopped on exit (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
import yaml

from bench.seed import seed_customers
from bench.world import World, world
from connectors.app.database import make_engine
from connectors.app.mapping import load_mapping
from connectors.app.triggers import install
from examples.invoicing import MAPPING


@dataclass
class Live:
    world: World
    pairs: dict[int, str]
    mode: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def check_alive(self) -> None:
        dead = [p for p in self.processes if p.poll() is not None]
        if dead:
            logs = "\n".join(
                f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                for log in sorted(self.world.directory.glob("*.log"))
            )
            raise RuntimeError(f"a ledgersync process exited ({[p.returncode for p in dead]}):\n{logs}")

    def app_notes(self, prefix: str) -> dict[int, str]:
        """Customer id -> notes, for the customers whose notes start with `prefix`."""
        engine = make_engine(self.world.app_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT id, notes FROM customers WHERE notes LIKE :p"), {"p": prefix + "%"}
                ).all()
            return {int(i): str(n) for i, n in rows}
        finally:
            engine.dispose()

    def quickbooks_notes(self, prefix: str) -> dict[str, str]:
        """QuickBooks customer id -> Notes, for the customers whose Notes start with `prefix`."""
        return {
            str(c["Id"]): str(c["Notes"])
            for c in self.world.qbo.list_records("Customer")
            if str(c.get("Notes", "")).startswith(prefix)
        }

    def metered(self) -> int:
        return int(self.world.qbo.request_log()["metered"])

    def queued(self) -> int:
        """Messages on the workers' queues, waiting or being worked on (not the delayed ones)."""
        from engine.broker import QUEUES, make_broker, queued

        assert self.world.broker_url is not None, "only a distributed ledgersync has a queue"
        broker = make_broker(self.world.broker_url)
        try:
            lengths = queued(broker)[1]
            return sum(lengths[name] for name in QUEUES)
        finally:
            broker.close()

    def wait_drained(self, most: int = 20, quiet: float = 5.0, timeout: float = 600) -> None:
        """Until the workers' queue has held at most `most` messages for `quiet` seconds: what the
        start sent (every connection's first polls) is done, and what follows is the steady state."""
        deadline = time.monotonic() + timeout
        since = time.monotonic()
        while time.monotonic() - since < quiet:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers' queue did not drain within {timeout:.0f} s")
            if self.queued() > most:
                since = time.monotonic()
            time.sleep(0.5)

    def wait_quiet(self, quiet: float = 2.0, timeout: float = 120) -> None:
        """Until no QuickBooks request has been made for `quiet` seconds (start-up polls and sweep
        done) and the emulator holds no webhook event: the seeding's events, whose first delivery
        found no web app yet, would otherwise hold every later event until QuickBooks' retry."""
        deadline = time.monotonic() + timeout
        last, since = self.world.qbo.request_log()["total"], time.monotonic()
        while time.monotonic() - since < quiet or self.world.qbo.webhook_deliveries()["pending"]:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"QuickBooks requests and webhooks did not stop for {quiet} s within {timeout:.0f} s"
                )
            time.sleep(0.2)
            now = self.world.qbo.request_log()["total"]
            if now != last:
                last, since = now, time.monotonic()


def _wait_healthy(w: World, live: Live, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{w.port}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the web app did not answer /healthz within {timeout:.0f} s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def read_outbox(w: World) -> None:
    """Install the outbox triggers and switch every entity of the world's mapping to outbox capture.

    Done after seeding (the seed's bulk copies must stay behind the cursors): the first outbox read
    then reads each table once, every row a duplicate of what is journaled."""
    data = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    for entity in data["entities"].values():
        entity["capture"] = {**entity.get("capture", {}), "mode": "outbox"}
    mapping = w.directory / "mapping-outbox.yaml"
    mapping.write_text(yaml.safe_dump(data), encoding="utf-8")
    engine = make_engine(w.app_url)
    try:
        install(engine, load_mapping(mapping))
    finally:
        engine.dispose()
    config = w.config.read_text(encoding="utf-8")
    w.config.write_text(config.replace(f"mapping: {MAPPING}", f"mapping: {mapping}"), encoding="utf-8")


@contextlib.contextmanager
def running(
    mode: str,
    customers: int,
    *,
    schedule: dict[str, float] | None = None,
    workers: int = 2,
    capture: str | None = None,
) -> Iterator[Live]:
    """`mode` "embedded" or "distributed", on `customers` linked customers, until the block ends.
    `capture`: "outbox" (the default when distributed) or "poll" (embedded's)."""
    distributed = mode == "distributed"
    if mode not in ("embedded", "distributed"):
        raise ValueError(f"unknown mode {mode!r}: embedded or distributed")
    backend = "postgres" if distributed else "sqlite"
    with world(backend, schedule=schedule, broker=distributed, webhooks=True) as w:
        pairs = seed_customers(w, customers)
        if (capture or ("outbox" if distributed else "poll")) == "outbox":
            read_outbox(w)
        with serving(Live(w, pairs, mode), workers) as live:
            yield live


@contextlib.contextmanager
def serving(live: Live, workers: int = 2, threads: int = 4) -> Iterator[Live]:
    """Start `live`'s ledgersync (`workers` worker processes of `threads` threads, the scheduler and
    the web app when distributed; `run` when embedded), wait for /healthz, stop them on exit."""
    w = live.world
    try:
        if live.mode == "distributed":
            live.processes += [
                w.popen(f"worker-{n}", "worker", "--threads", str(threads)) for n in range(workers)
            ]
            live.processes += [w.popen("scheduler", "scheduler"), w.popen("web", "web")]
        else:
            live.processes.append(w.popen("run", "run"))
        _wait_healthy(w, live)
        yield live
    finally:
        _stop(live.processes)
