"""One benchmark's world: the emulator (in a child process), the example app's database and a state
store on SQLite or PostgreSQL, a ledgersync.yaml, and ways to run `ledgersync` on it, in this
process (for CPU and SQL counts without interpreter start-up) or as a child (for a whole process's
CPU and peak memory, from wait4).

PostgreSQL databases are private schemas (tests/support/stores.py), Redis a claimed database number
(tests/integration/harness.py), so a benchmark can run beside the test suite.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.emulator_proc import RemoteEmulator, emulator_process
from connectors.quickbooks.crypto import generate_key
from connectors.quickbooks.emulator import EmulatorConfig
from examples.invoicing import MAPPING

#: QuickBooks' "minute", shortened: the emulator and ledgersync's rate budget both use it.
MINUTE_SECONDS = 6.0
SCRIPT = Path(sys.executable).with_name("ledgersync")
VERIFIER = "bench-verifier-token"

CONFIG = """\
state_url: {state_url}
{broker}secret_key: {{env: LEDGERSYNC_SECRET_KEY}}
quickbooks:
  environment: {qbo}
  client_id: {client_id}
  client_secret: {{env: QBO_CLIENT_SECRET}}
  minute_seconds: {minute}
  batch_writes: {batch_writes}
  webhook_verifier_token: {{env: QBO_VERIFIER_TOKEN}}
  defaults:
    income_account: "1"
app:
  database_url: {app}
  mapping: {mapping}
{schedule}web:
  port: {port}
"""


def pg_url_in(schema: str) -> str:
    from tests.support.stores import postgres_url

    return f"{postgres_url()}?options=-csearch_path%3D{schema}"


@dataclass(frozen=True)
class Places:
    """Where a world runs, for a machine shared with others: `port` the web app's (the emulator's is
    the next one; None: free ports), `redis_url` a Redis database of the caller's own (flushed; None:
    one claimed as the integration tests claim theirs), `schema_prefix` of the PostgreSQL schemas."""

    port: int | None = None
    redis_url: str | None = None
    schema_prefix: str = "ls"


@dataclass
class World:
    directory: Path
    qbo: RemoteEmulator
    app_url: str
    state_url: str
    config: Path
    env: dict[str, str]
    port: int
    broker_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> tuple[int, str]:
        """`ledgersync --config ... ARGS` in this process: (exit code, what it printed)."""
        return run_in_process(["--config", str(self.config), *args], self.env)

    def cli_json(self, *args: str) -> dict[str, Any]:
        code, output = self.cli(*args)
        if code not in (0, 4):
            raise RuntimeError(f"ledgersync {' '.join(args)} exited {code}:\n{output[-3000:]}")
        start = output.index("{")
        return dict(json.loads(output[start:]))

    def child(self, *args: str, timeout: float = 3600) -> Child:
        """`ledgersync --config ... ARGS` as a child process, measured by wait4."""
        return run_child(
            [str(SCRIPT), "--config", str(self.config), *args], self.env, self.directory, timeout
        )

    def popen(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A long-running `ledgersync` process (run, worker, scheduler, web), output in a log file."""
        log = self.directory / f"{name}.log"
        with log.open("ab") as sink:
            return subprocess.Popen(
                [str(SCRIPT), "--config", str(self.config), *args],
                cwd=self.directory,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def connect(self) -> None:
        code, output = self.cli("connect")
        if code != 0:
            raise RuntimeError(f"ledgersync connect exited {code}: {output}")


@dataclass
class Child:
    code: int
    cpu: float  # user + system seconds
    wall: float
    max_rss_mib: float
    output: str


def run_child(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Child:
    log = cwd / f"child-{time.monotonic_ns()}.log"
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Child(
        code=process.returncode,
        cpu=usage.ru_utime + usage.ru_stime,
        wall=time.perf_counter() - started,
        max_rss_mib=usage.ru_maxrss / 1024,
        output=log.read_text(encoding="utf-8", errors="replace"),
    )


@functools.cache
def _cli() -> Any:
    from ledgersync import cli

    # main() registers the command groups and then runs them; the first half is wanted, once.
    cli._register()
    logging.basicConfig(level=logging.WARNING, format="  [%(levelname)s %(name)s] %(message)s")
    return cli


def run_in_process(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """The ledgersync CLI called as a function, with `env` as the environment, output captured."""
    cli = _cli()
    saved = dict(os.environ)
    os.environ.update(env)
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = cli.app(argv, prog_name="ledgersync", standalone_mode=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return int(code or 0), output.getvalue()


def schedule_yaml(schedule: dict[str, float] | None) -> str:
    if not schedule:
        return ""
    return "schedule:\n" + "".join(f"  {k}: {v}\n" for k, v in schedule.items())


@contextlib.contextmanager
def world(
    backend: str,
    *,
    emulator: EmulatorConfig | None = None,
    batch_writes: bool = True,
    schedule: dict[str, float] | None = None,
    broker: bool = False,
    webhooks: bool = False,
    create_app: bool = True,
    companies: int = 1,
    mapping: Path = MAPPING,
    places: Places | None = None,
) -> Iterator[World]:
    """A fresh world on `backend` ("sqlite": app and store in SQLite files; "postgres": each in a
    private schema). `webhooks`: the emulator delivers to the web app's receiver. `broker`: a Redis
    database of our own (distributed mode). `companies`: the emulator hosts that many (the default
    one first). `places`: where to run (default: free ports, a claimed Redis database, `ls_` schemas)."""
    from engine.web.serve import free_port
    from examples.invoicing.seed import create_schema

    places = places or Places()
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ledgersync-bench-")))
        port = places.port or free_port()
        config = emulator or EmulatorConfig(minute_seconds=MINUTE_SECONDS)
        if webhooks:
            from dataclasses import replace

            config = replace(
                config,
                webhook_url=f"http://127.0.0.1:{port}/webhooks/quickbooks",
                verifier_token=VERIFIER,
            )
        emulator_port = places.port + 1 if places.port else 0
        qbo = stack.enter_context(emulator_process(config, companies=companies, port=emulator_port))
        if backend == "sqlite":
            app_url, state_url = f"sqlite:///{directory / 'app.db'}", f"sqlite:///{directory / 'state.db'}"
        elif backend == "postgres":
            from tests.support.stores import postgres_schema

            app_url = pg_url_in(stack.enter_context(postgres_schema(prefix=places.schema_prefix)))
            state_url = pg_url_in(stack.enter_context(postgres_schema(prefix=places.schema_prefix)))
        else:
            raise ValueError(f"unknown backend {backend!r}: sqlite or postgres")
        broker_url = None
        if broker:
            broker_url = stack.enter_context(_redis(places.redis_url))
        if create_app:
            from connectors.app.database import make_engine

            engine = make_engine(app_url)
            try:
                create_schema(engine)
            finally:
                engine.dispose()
        path = directory / "ledgersync.yaml"
        path.write_text(
            CONFIG.format(
                state_url=state_url,
                broker=f"broker_url: {broker_url}\n" if broker_url else "",
                qbo=qbo.base_url,
                client_id=qbo.client_id,
                minute=config.minute_seconds,
                batch_writes="true" if batch_writes else "false",
                app=app_url,
                mapping=mapping,
                schedule=schedule_yaml(schedule),
                port=port,
            ),
            encoding="utf-8",
        )
        env = {
            "PATH": os.environ.get("PATH", str(SCRIPT.parent)),
            "HOME": str(directory),
            "LEDGERSYNC_SECRET_KEY": generate_key(),
            "QBO_CLIENT_SECRET": qbo.client_secret,
            "QBO_VERIFIER_TOKEN": VERIFIER,
            "LEDGERSYNC_LOG_LEVEL": "WARNING",
        }
        yield World(directory, qbo, app_url, state_url, path, env, port, broker_url)


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    """`url` (flushed before and after: the caller gives a database of its own), else a claimed one."""
    from tests.integration.harness import redis_database

    if url is None:
        with redis_database() as claimed:
            yield claimed
        return
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
        yield url
    finally:
        client.flushdb()
        client.close()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
