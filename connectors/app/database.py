"""The app database: engines set up for the connector, its transactions, and the table of foreign errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from engine.errors import ConfigurationError, LedgersyncError, RecordRejectedError, UpstreamUnavailableError

log = logging.getLogger(__name__)

#: How long a SQLite transaction waits for another one's write lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 driver, emits BEGIN (see _on_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: sa.Connection) -> None:
    # Writes take the lock up front so a transaction never fails half-way on "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("ledgersync_write") else "BEGIN")


def make_engine(url: str, *, schema: str | None = None) -> sa.Engine:
    """An engine on the app database; on PostgreSQL `schema` (if given) becomes the search_path."""
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as error:
        raise ConfigurationError(f"not a database URL: {url!r}") from error
    if parsed.get_backend_name() == "sqlite":
        if schema is not None:
            raise ConfigurationError("a schema applies to PostgreSQL only", detail=url)
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigurationError(f"bad schema name {schema!r}")
        connect_args["options"] = f"-csearch_path={schema}"
    try:
        return sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise ConfigurationError(f"cannot open the app database {parsed.drivername!r}: {error}") from error


def translate(error: exc.SQLAlchemyError) -> LedgersyncError:
    """The one table of foreign errors: what each database failure means for the runner."""
    message = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    if isinstance(error, exc.IntegrityError):
        return RecordRejectedError(f"the app database refused the record: {message}", code="integrity")
    if isinstance(error, exc.DataError):
        return RecordRejectedError(f"the app database refused a value: {message}", code="data")
    if isinstance(error, exc.ProgrammingError | exc.NoSuchTableError):
        return ConfigurationError(f"the app database does not match the mapping: {message}")
    # OperationalError, InterfaceError, DisconnectionError, TimeoutError and the rest: try again later.
    return UpstreamUnavailableError(f"the app database is unavailable: {message}")


@contextmanager
def transaction(engine: sa.Engine, *, write: bool = False, snapshot: bool = False) -> Iterator[sa.Connection]:
    """One transaction; database errors come out as the engine's error tree.

    `write` takes SQLite's write lock at BEGIN. `snapshot` reads through one consistent snapshot
    (REPEATABLE READ, read only) on PostgreSQL.
    """
    try:
        with engine.connect() as conn:
            conn.info["ledgersync_write"] = write
            if snapshot and engine.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield conn
    except exc.SQLAlchemyError as error:
        translated = translate(error)
        log.warning("app database error: %s", translated, extra={"backend": engine.dialect.name})
        raise translated from error


def is_postgres(engine: sa.Engine | sa.Connection) -> bool:
    return engine.dialect.name == "postgresql"
