"""LISTEN for the outbox triggers' NOTIFY (PostgreSQL): an app commit is read within a moment.

The triggers (`connectors.app.triggers`) send `pg_notify(<outbox>, <entity>)` in the transaction that
changed the row; PostgreSQL delivers it when that transaction commits. `OutboxListener` holds one
connection of its own in autocommit, LISTENs, and calls `on_change` with the entities that changed,
gathering the notifications of `settle` seconds into one call. A notification only says "read now":
the outbox read is what is exact, and the scheduled poll stays the fallback, so a notification lost
(the connection dropped, the listener restarting) delays a change, never loses it. After every
(re)connect `on_change` is called once with every entity, since notifications sent meanwhile are gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import psycopg
import sqlalchemy as sa
from psycopg import sql

from connectors.app.triggers import channel
from engine.model import EntityType

log = logging.getLogger(__name__)

#: Seconds between checks for `stop()` while no notification arrives.
WAIT = 0.5


def conninfo(url: sa.URL) -> str:
    """A libpq URI for a SQLAlchemy PostgreSQL URL (its `options`, such as search_path, kept)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxListener:
    """A daemon thread LISTENing on an outbox's channel; `start()`, later `stop()`."""

    def __init__(
        self,
        url: sa.URL,
        outbox_table: str,
        entities: Iterable[EntityType],
        on_change: Callable[[list[EntityType]], object],
        *,
        settle: float = 0.02,
        retry: float = 1.0,
    ) -> None:
        self.conninfo = conninfo(url)
        self.channel = channel(outbox_table)
        self.entities = tuple(entities)
        self.on_change = on_change
        self.settle = settle
        self.retry = retry
        #: Set while LISTEN is in place (tests wait for it before committing).
        self.listening = threading.Event()
        #: The server process of the listening connection (to find it in pg_stat_activity).
        self.backend_pid: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> OutboxListener:
        self._thread = threading.Thread(target=self._run, name="outbox-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as error:
                log.warning("outbox listener lost its connection (%s); polls cover until it is back", error)
            finally:
                self.listening.clear()
            self._stop.wait(self.retry)

    def _listen(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self.backend_pid = conn.info.backend_pid
            self.listening.set()
            log.info("listening for outbox changes on channel %s", self.channel)
            self._deliver(set(self.entities))  # whatever was committed while nobody listened
            while not self._stop.is_set():
                payloads = {n.payload for n in conn.notifies(timeout=WAIT, stop_after=1)}
                if not payloads:
                    continue
                payloads |= {n.payload for n in conn.notifies(timeout=self.settle)}
                self._deliver(payloads)

    def _deliver(self, payloads: set[str]) -> None:
        changed = [e for e in self.entities if e.value in payloads]
        if not changed:
            return  # another entity, or another schema's outbox on the same channel
        try:
            self.on_change(changed)
        except Exception:
            log.exception("outbox listener could not ask for a read; the next poll reads it")


def listener_for(
    engine: sa.Engine,
    outbox_table: str,
    outbox_entities: Iterable[EntityType],
    on_change: Callable[[list[EntityType]], object],
) -> OutboxListener | None:
    """A listener when the app database is PostgreSQL (psycopg) and some entity reads the outbox."""
    entities = tuple(outbox_entities)
    if engine.dialect.name != "postgresql" or not entities:
        return None
    if engine.dialect.driver != "psycopg":
        log.warning("outbox LISTEN needs the psycopg driver, not %s; polling only", engine.dialect.driver)
        return None
    return OutboxListener(engine.url, outbox_table, entities, on_change)
