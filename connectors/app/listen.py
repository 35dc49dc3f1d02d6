"""LISTEN for the outbox triggers' NOTIFY (PostgreSQL): an app commit is read within a moment.

The triggers (`connectors.app.triggers`) send `pg_notify(<outbox>, '<schema>.<entity>')` in the
transaction that changed the row; PostgreSQL delivers it when that transaction commits.
`OutboxListener` holds one connection of its own in autocommit, LISTENs, and calls `on_change` with
the entities that changed, gathering the notifications of `settle` seconds into one call. A
notification only says "read now": the outbox read is what is exact, and the scheduled poll stays
the fallback, so a notification lost (the connection dropped, the listener restarting) delays a
change, never loses it. After every (re)connect `on_change` is called once with every entity, since
notifications sent meanwhile are gone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence

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
        schemas: Iterable[str] | None = None,
    ) -> None:
        self.conninfo = conninfo(url)
        self.channel = channel(outbox_table)
        self.entities = tuple(entities)
        self.on_change = on_change
        self.settle = settle
        self.retry = retry
        #: The schemas of the app's tables (None: any): other apps' notifications are ignored.
        self.schemas = None if schemas is None else frozenset(schemas)
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
            self._notify(self.entities)  # what was committed while nobody listened
            while not self._stop.is_set():
                payloads = {n.payload for n in conn.notifies(timeout=WAIT, stop_after=1)}
                if payloads:
                    payloads |= {n.payload for n in conn.notifies(timeout=self.settle)}
                    self._deliver(payloads)

    def _deliver(self, payloads: set[str]) -> None:
        named = set()
        for payload in payloads:
            schema, _, entity = payload.rpartition(".")
            if self.schemas is None or schema in self.schemas:
                named.add(entity)
        # Another entity, or another schema's app on the same channel: nothing to read.
        self._notify([e for e in self.entities if e.value in named])

    def _notify(self, changed: Sequence[EntityType]) -> None:
        if not changed:
            return
        try:
            self.on_change(list(changed))
        except Exception:
            log.exception("outbox listener could not ask for a read; the next poll reads it")


def listener_for(
    engine: sa.Engine,
    outbox_table: str,
    outbox_entities: Iterable[EntityType],
    on_change: Callable[[list[EntityType]], object],
    tables: Iterable[str] = (),
) -> OutboxListener | None:
    """A listener when the app database is PostgreSQL (psycopg) and some entity reads the outbox;
    `tables` (the mapped tables) name the schemas whose notifications are this app's."""
    entities = tuple(outbox_entities)
    if engine.dialect.name != "postgresql" or not entities:
        return None
    if engine.dialect.driver != "psycopg":
        log.warning("outbox LISTEN needs the psycopg driver, not %s; polling only", engine.dialect.driver)
        return None
    names = list(tables)
    schemas = schemas_of(engine, names) if names else None
    return OutboxListener(engine.url, outbox_table, entities, on_change, schemas=schemas)


def schemas_of(engine: sa.Engine, tables: Iterable[str]) -> set[str]:
    """The schemas the app's tables resolve to on `engine`'s search path (as TG_TABLE_SCHEMA names them)."""
    query = sa.text("SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = to_regclass(:t)")
    with engine.connect() as conn:
        found = {conn.execute(query, {"t": table}).scalar() for table in tables}
    return {str(schema).strip('"') for schema in found if schema is not None}
