"""`SqlStateStore`: the state store on SQLAlchemy (SQLite by default, PostgreSQL for many workers)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import InterfaceError, OperationalError

from engine.errors import ConfigurationError
from engine.ports import StateStore
from engine.store.errors import StoreUnavailableError
from engine.store.session import SqlSession

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///ledgersync.db"
MIGRATIONS = Path(__file__).with_name("migrations")
#: How long a SQLite session waits for another one's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 driver, emits BEGIN (see _on_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    # Take the write lock up front: a session that reads, then writes, cannot fail half-way with
    # "database is locked", and sessions serialize (which is what lock_link relies on there).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, schema: str | None = None) -> sa.Engine:
    """An engine set up for the store: WAL, foreign keys and a busy timeout on SQLite;
    on PostgreSQL, `schema` (if given) becomes the search_path of every connection.
    """
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if schema is not None:
            raise ConfigurationError("a schema applies to PostgreSQL only", detail=url)
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    if backend == "postgresql":
        connect_args: dict[str, Any] = {}
        if schema is not None:
            if not _SCHEMA_NAME.fullmatch(schema):
                raise ConfigurationError(f"bad schema name {schema!r}")
            connect_args["options"] = f"-csearch_path={schema}"
        return sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    raise ConfigurationError(
        f"unsupported state store database {backend!r}", detail="use a sqlite:// or postgresql:// URL"
    )


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini), bound to `connection` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class SqlStateStore:
    """The state store on one database.

    `session()` is one transaction: it commits when the block exits normally and rolls back when
    it raises. On SQLite each session holds the database write lock from its first statement, so
    sessions run one at a time (others wait up to the busy timeout); on PostgreSQL they run
    concurrently (READ COMMITTED) and `lock_link` serializes work on one record.
    """

    def __init__(self, url: str = DEFAULT_URL, *, create: bool = False, schema: str | None = None) -> None:
        self._url = url
        self._engine = make_engine(url, schema=schema)
        if create:
            self.migrate()

    @property
    def backend(self) -> str:
        """The database kind: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[SqlSession]:
        """A transaction: commits when the block exits normally, rolls back on an exception.

        Database outages, lock timeouts, deadlocks and serialization failures surface as
        StoreUnavailableError (retriable: nothing was committed).
        """
        try:
            with self._engine.begin() as conn:
                yield SqlSession(conn)
        except (OperationalError, InterfaceError) as error:
            log.warning(
                "state store unavailable: %s", type(error.orig).__name__, extra={"backend": self.backend}
            )
            raise StoreUnavailableError("the state store is unavailable", detail=str(error.orig)) from error

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic upgrade head), in one transaction."""
        with self._engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        log.info("state store migrated", extra={"backend": self.backend})

    def dispose(self) -> None:
        """Close every pooled connection; the store is unusable afterwards."""
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"SqlStateStore({sa.make_url(self._url).render_as_string(hide_password=True)!r})"


def open_store(url: str) -> SqlStateStore:
    """Open the store at `url` and bring its schema up to date."""
    return SqlStateStore(url, create=True)


def _conforms(store: SqlStateStore) -> StateStore:
    # Checked by mypy: SqlStateStore (and its sessions) implement the engine's StateStore port.
    return store
