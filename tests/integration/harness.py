"""The world the runtime tests drive: the QuickBooks emulator, the example app, a ledgersync.yaml, and
`ledgersync` processes started from the console script, each stopped (SIGTERM, then SIGKILL) afterwards.

The test process watches from outside the way an operator would: through the state store, the
emulator's control API and the app's own tables; it never calls into the processes it started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from connectors.quickbooks.crypto import generate_key
from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle, running_emulator
from engine.compare import differing_fields
from engine.diff import changed_fields
from engine.model import EntityType, Side
from engine.plan import OpStatus
from engine.settings import load_config
from engine.state import Link
from engine.web.serve import free_port
from examples.invoicing import MAPPING, create_example_db
from ledgersync.bootstrap import SECTIONS, Runtime
from tests.support.stores import postgres_schema, postgres_url

SCRIPT = Path(sys.executable).with_name("ledgersync")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: Redis databases the integration tests may take (one each, claimed, flushed before and after).
REDIS_DBS = range(10, 16)

#: Scripts (the tests) read the web process's JSON API with this token; ADMIN signs in to its pages.
API_TOKEN = "integration-api-token"
ADMIN, ADMIN_PASSWORD = "ops-admin", "integration admin password"

#: The web process's webhook endpoint checks the emulator's signatures with this token.
VERIFIER = "integration-verifier-token"

CONFIG = """\
state_url: {state_url}
{broker}secret_key: {{env: LEDGERSYNC_SECRET_KEY}}
quickbooks:
  environment: {qbo}
  client_id: {client_id}
  client_secret: {{env: QBO_CLIENT_SECRET}}
{quickbooks}  defaults:
    income_account: "1"
app:
  database_url: {app}
  mapping: {mapping}
schedule:
{schedule}web:
  port: {port}
  api_token: {{env: LEDGERSYNC_API_TOKEN}}
"""


def section(settings: Mapping[str, object]) -> str:
    """Lines of a config section: booleans as YAML writes them, anything else as given."""
    return "".join(
        f"  {name}: {str(value).lower() if isinstance(value, bool) else value}\n"
        for name, value in settings.items()
    )


def pg_url_in(schema: str) -> str:
    """The test database with `schema` as the search path of every connection (a libpq option)."""
    return f"{postgres_url()}?options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database of our own for one test: claimed (so two runs never share one), flushed around it."""
    claims = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    token = secrets.token_hex(8)
    try:
        for db in REDIS_DBS:
            key = f"ledgersync-integration-claim:{db}"
            if claims.set(key, token, nx=True, ex=900):
                break
        else:
            raise RuntimeError(f"every Redis database in {list(REDIS_DBS)} is claimed by another test run")
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        try:
            client.flushdb()
            yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
        finally:
            client.flushdb()
            client.close()
            if claims.get(key) == token.encode():
                claims.delete(key)
    finally:
        claims.close()


class Processes:
    """`ledgersync` subprocesses with their output in files; every one is stopped by `stop_all`."""

    def __init__(self, directory: Path, env: dict[str, str], config: Path) -> None:
        self.directory = directory
        self.env = env
        self.config = config
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.directory / f"{name}-{len(self.started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(SCRIPT), "--config", str(self.config), *args],
                cwd=self.directory,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.started.append((name, process, log))
        return process

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command that ends by itself (connect, sync): its exit code and output."""
        return subprocess.run(
            [str(SCRIPT), "--config", str(self.config), *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def running(self) -> list[str]:
        return [name for name, process, _ in self.started if process.poll() is None]

    def check_alive(self) -> None:
        dead = [
            f"{name} exited with {process.returncode}"
            for name, process, _ in self.started
            if process.poll() is not None and process.returncode not in (0, -signal.SIGKILL)
        ]
        if dead:
            raise AssertionError("; ".join(dead) + "\n" + self.logs())

    def stop_all(self, timeout: float = 15) -> None:
        for _, process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, process, _ in self.started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for name, process, log in self.started:
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            parts.append(f"----- {name} (pid {process.pid}, exit {process.poll()}) -----\n{text[-6000:]}")
        return "\n".join(parts)


@dataclass(frozen=True)
class Copies:
    """One linked record's fields as each side holds them."""

    link: Link
    app: dict[str, Any]
    quickbooks: dict[str, Any]


@dataclass
class World:
    """One scenario's emulator, app database, configuration and processes."""

    qbo: EmulatorHandle
    app_url: str
    config_path: Path
    env: dict[str, str]
    processes: Processes
    #: Where the web process (`ledgersync web` or `run`) listens, and the workers' Redis (distributed).
    web_url: str
    broker_url: str | None
    runtime: Runtime = field(init=False)

    def __post_init__(self) -> None:
        self.runtime = Runtime(load_config(self.config_path, self.env, SECTIONS))

    @property
    def connection(self) -> str:
        return self.runtime.connection

    def connect(self) -> None:
        """`ledgersync connect`: the OAuth code flow (the emulator consents by itself)."""
        done = self.processes.run("connect")
        assert done.returncode == 0, done.stdout + done.stderr

    def links(self, entity: EntityType) -> dict[str, str]:
        """App id -> QuickBooks id of every record linked on both sides."""
        with self.runtime.store.session() as s:
            return {
                link.app_id: link.quickbooks_id
                for link in s.list_links(self.connection, entity)
                if link.app_id and link.quickbooks_id
            }

    def fingerprint(self) -> tuple[Any, ...]:
        """What changes while anything is still happening: the store's counts, QuickBooks' writes (its
        reads go on: the polls), the app's rows and versions."""
        with self.runtime.store.session() as s:
            counts = s.counts(self.connection)
        engine = sa.create_engine(self.app_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                versions = tuple(
                    conn.exec_driver_sql(f"SELECT count(*), coalesce(sum(version), 0) FROM {table}").one()
                    for table in ("customers", "invoices", "payments")
                )
        finally:
            engine.dispose()
        by_endpoint = self.qbo.request_log()["by_endpoint"]
        return (
            sorted(counts.journal.items()),
            sorted(counts.ops.items()),
            sorted(counts.conflicts.items()),
            counts.links,
            sum(n for endpoint, n in by_endpoint.items() if endpoint.startswith("POST")),
            versions,
        )

    def busy(self) -> str | None:
        """What is still pending (undecided journal entries, ops to apply), or None."""
        with self.runtime.store.session() as s:
            counts = s.counts(self.connection)
        undecided = counts.journal.get("new", 0)
        pending = counts.ops.get("pending", 0)
        return f"{undecided} undecided change(s), {pending} pending op(s)" if undecided or pending else None

    def wait_until(self, what: str, condition: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.processes.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.25)

    def wait_until_quiet(self, timeout: float, settle: float = 4.0) -> float:
        """Until nothing is pending and nothing changed for `settle` seconds (longer than every poll
        interval); returns the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        last, since = self.fingerprint(), time.monotonic()
        while True:
            self.processes.check_alive()
            time.sleep(0.5)
            now = self.fingerprint()
            if now != last:
                last, since = now, time.monotonic()
            elif self.busy() is None and time.monotonic() - since >= settle:
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not quiet after {timeout:.0f} s: {self.busy() or 'still changing'}; last state {now}\n"
                    + self.stuck()
                )

    def stuck(self) -> str:
        """For a timeout's message: the records whose changes are still undecided, and their ops."""
        lines = []
        with self.runtime.store.session() as s:
            for key in s.pending_records(self.connection, limit=10):
                link = s.find_link(self.connection, key.entity, key.side, key.external_id)
                ops = s.ops(self.connection, list(OpStatus), link_id=link.id) if link else []
                lines.append(
                    f"  {key.side} {key.entity} {key.external_id}: link {link}; latest "
                    f"{s.latest_event(key)}; ops {[(o.op.kind, o.op.side, o.status) for o in ops]}"
                )
        return "\n".join(lines)

    def copies(self) -> list[Copies]:
        """Both sides' fields of every record linked on both sides, each read once."""
        sides = self.runtime.sides(self.connection)
        with self.runtime.store.session() as s:
            links = [link for link in s.list_links(self.connection) if link.app_id and link.quickbooks_id]
        # Read both copies outside a store session: the QuickBooks connector opens its own for tokens,
        # and on SQLite a nested session would wait for the lock its own thread holds.
        return [
            Copies(
                link,
                dict(sides[Side.APP].fetch(link.entity, str(link.app_id)).fields),
                dict(sides[Side.QUICKBOOKS].fetch(link.entity, str(link.quickbooks_id)).fields),
            )
            for link in links
        ]

    def differing(self, copies: list[Copies] | None = None) -> dict[tuple[EntityType, str], frozenset[str]]:
        """Linked records whose synced fields differ, apart from fields with an open conflict (read
        now, or in `copies` read since the system went quiet)."""
        copies = self.copies() if copies is None else copies
        found: dict[tuple[EntityType, str], frozenset[str]] = {}
        with self.runtime.store.session() as s:
            open_fields = {(c.link_id, c.field) for c in s.list_conflicts(self.connection)}
            for copy in copies:
                diff = differing_fields(s, copy.link, copy.app, copy.quickbooks, self.runtime.policy)
                diff = frozenset(f for f in diff if (copy.link.id, f) not in open_fields)
                if diff:
                    found[(copy.link.entity, str(copy.link.app_id))] = diff
        return found

    def quickbooks_count(self, entity: str) -> int:
        client = self.runtime.quickbooks_connector(self.connection).client
        return int(client.count(f"SELECT COUNT(*) FROM {entity}"))

    def app_count(self, table: str) -> int:
        engine = sa.create_engine(self.app_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
        finally:
            engine.dispose()

    def open_conflicts(self) -> dict[tuple[str, str], tuple[Any, Any]]:
        """(app id, field) -> (app value, QuickBooks value) of every open customer conflict."""
        with self.runtime.store.session() as s:
            links = {link.id: link.app_id for link in s.list_links(self.connection, EntityType.CUSTOMER)}
            return {
                (str(links[c.link_id]), c.field): (c.app, c.quickbooks)
                for c in s.list_conflicts(self.connection)
                if c.link_id in links
            }


def same(field_name: str, a: Any, b: Any) -> bool:
    """Equal after the engine's normalization (phone digits, e-mail case, whitespace)."""
    return not changed_fields({field_name: a}, {field_name: b})


@contextlib.contextmanager
def world(
    tmp_path: Path,
    *,
    distributed: bool,
    emulator: EmulatorConfig | None = None,
    kick_seconds: float = 2,
    batch_writes: bool = True,
    schedule: Mapping[str, float] | None = None,
    quickbooks: Mapping[str, object] | None = None,
    webhooks: bool = False,
    oauth_via_web: bool = False,
    mapping: Path = MAPPING,
) -> Iterator[World]:
    """The emulator, the example app (PostgreSQL when distributed, else SQLite) and a state store the
    same way, a configuration file, and a `Processes` whose every process is stopped on exit.

    `kick_seconds`: how often the scheduler's kick sweeps (shorter races the messages more);
    `schedule` and `quickbooks`: other settings of those sections (the app polled every 0.5 s,
    QuickBooks every 1 s, its minute 1 s long, a 20 s timeout unless given); `webhooks`: the emulator
    delivers webhooks, signed with VERIFIER, to the web process (`ledgersync web` or `run`);
    `oauth_via_web`: QuickBooks sends a user who consents back to the web process's /callback (a
    reconnect from the web app's /connect); `mapping`: the app's mapping file."""
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    emulator = emulator or EmulatorConfig(minute_seconds=1.0)
    qbo_settings: dict[str, object] = {"minute_seconds": 1.0, "timeout_seconds": 20}
    qbo_settings["batch_writes"] = batch_writes
    if oauth_via_web:
        qbo_settings["redirect_uri"] = f"{web_url}/callback"
    if webhooks:
        emulator = dataclasses.replace(
            emulator, webhook_url=f"{web_url}/webhooks/quickbooks", verifier_token=VERIFIER
        )
        qbo_settings["webhook_verifier_token"] = "{env: QBO_VERIFIER_TOKEN}"
    qbo_settings.update(quickbooks or {})
    timing = {"app_poll_seconds": 0.5, "quickbooks_poll_seconds": 1, "kick_seconds": kick_seconds}
    timing.update(schedule or {})
    with contextlib.ExitStack() as stack:
        qbo = stack.enter_context(running_emulator(emulator))
        if distributed:
            app_url = pg_url_in(stack.enter_context(postgres_schema()))
            state_url = pg_url_in(stack.enter_context(postgres_schema()))
            broker_url = stack.enter_context(redis_database())
            broker = f"broker_url: {broker_url}\n"
        else:
            app_url, state_url, broker_url = f"sqlite:///{tmp_path / 'app.db'}", "sqlite:///state.db", None
            broker = ""
        create_example_db(app_url)
        config_path = tmp_path / "ledgersync.yaml"
        config_path.write_text(
            CONFIG.format(
                state_url=state_url,
                broker=broker,
                qbo=qbo.base_url,
                client_id=qbo.client_id,
                app=app_url,
                mapping=mapping,
                port=port,
                quickbooks=section(qbo_settings),
                schedule=section(timing),
            ),
            encoding="utf-8",
        )
        env = {
            "PATH": os.environ.get("PATH", str(SCRIPT.parent)),
            "LEDGERSYNC_SECRET_KEY": generate_key(),
            "LEDGERSYNC_API_TOKEN": API_TOKEN,
            "QBO_CLIENT_SECRET": qbo.client_secret,
            "LEDGERSYNC_LOG_LEVEL": "WARNING",
        }
        if webhooks:
            env["QBO_VERIFIER_TOKEN"] = VERIFIER
        processes = Processes(tmp_path, env, config_path)
        built = World(qbo, app_url, config_path, env, processes, web_url, broker_url)
        try:
            yield built
        except BaseException:
            print(processes.logs())
            raise
        finally:
            processes.stop_all()
            built.runtime.close()
