"""What a measured step cost: this process's CPU, the SQL statements it sent (per database), and the
CPU of the PostgreSQL backends serving it.

SQL statements are counted by a listener on SQLAlchemy's `Engine` class (every engine in the process,
the product's included, without touching its code); each is put down to the database URL it went to.
PostgreSQL backends are found by a pool `connect` listener (`SELECT pg_backend_pid()` on each new
connection) and their CPU read from /proc/PID/stat, which works because the server runs on this
machine; a backend that closes inside the measured step is read just before it goes.
"""

from __future__ import annotations

import contextlib
import functools
import resource
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bench.emulator_proc import proc_cpu_seconds


@dataclass
class Cost:
    cpu: float = 0.0
    wall: float = 0.0
    statements: Counter[str] = field(default_factory=Counter)
    #: CPU of the PostgreSQL backends this process used meanwhile (None: no PostgreSQL touched).
    server_cpu: float | None = None


class _Meter:
    """Process-wide listeners, installed once; `measure()` reads them around a step."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statements: Counter[str] = Counter()
        self.backends: dict[int, float] = {}  # pid -> CPU seconds when first seen (or last settled)
        self.settled = 0.0  # CPU of backends that have closed, since they were seen
        self.labels: dict[str, str] = {}
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._statement)
        sa.event.listen(sa.pool.Pool, "connect", self._connect)
        sa.event.listen(sa.pool.Pool, "close", self._close)

    def label(self, url: str, name: str) -> None:
        """Count statements sent to database `url` under `name` (others count as "other")."""
        self.labels[sa.make_url(url).render_as_string(hide_password=False)] = name

    def _statement(self, conn: sa.Connection, *_: Any) -> None:
        url = conn.engine.url.render_as_string(hide_password=False)
        with self.lock:
            self.statements[self.labels.get(url, "other")] += 1

    def _connect(self, dbapi: Any, record: Any) -> None:
        if type(dbapi).__module__.split(".")[0] != "psycopg":
            return
        with dbapi.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = int(cursor.fetchone()[0])
        if not dbapi.autocommit:
            dbapi.rollback()  # leave no transaction open behind the pool's back
        record.info["bench_pid"] = pid
        with contextlib.suppress(OSError), self.lock:
            self.backends[pid] = proc_cpu_seconds(pid)

    def _close(self, dbapi: Any, record: Any) -> None:
        pid = record.info.get("bench_pid")
        if pid is None:
            return
        with contextlib.suppress(OSError), self.lock:
            start = self.backends.pop(pid, None)
            if start is not None:
                self.settled += proc_cpu_seconds(pid) - start

    def server_cpu(self) -> float:
        """CPU of every backend seen, since seen (closed ones included)."""
        with self.lock:
            total = self.settled
            for pid, start in list(self.backends.items()):
                try:
                    total += proc_cpu_seconds(pid) - start
                except OSError:
                    del self.backends[pid]  # gone without a close event: its last CPU is lost
        return total


@functools.cache
def meter() -> _Meter:
    """The process's one meter (its listeners are installed on first use)."""
    return _Meter()


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def measure() -> Iterator[Cost]:
    """The cost of the `with` body; filled in when it ends."""
    m = meter()
    cost = Cost()
    with m.lock:
        before = Counter(m.statements)
        had_backends = bool(m.backends) or m.settled > 0
    server_before = m.server_cpu()
    cpu, wall = process_cpu(), time.perf_counter()
    try:
        yield cost
    finally:
        cost.cpu = process_cpu() - cpu
        cost.wall = time.perf_counter() - wall
        with m.lock:
            cost.statements = m.statements - before
            touched = had_backends or bool(m.backends) or m.settled > 0
        cost.server_cpu = (m.server_cpu() - server_before) if touched else None
