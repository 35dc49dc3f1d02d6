"""The app database: engines set up for the connector, its transactions, and the table of foreign errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import exc

from engine.errors import ConfigurationError, LedgersyncError, RecordRejectedError, UpstreamUnavailableError
from engine.store.engines import open_engine

log = logging.getLogger(__name__)


def _on_sqlite_begin(conn: sa.Connection) -> None:
    # Writes take the lock up front so a transaction never fails half-way on "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("ledgersync_write") else "BEGIN")


def make_engine(url: str, *, schema: str | None = None) -> sa.Engine:
    """An engine on the app database; on PostgreSQL `schema` (if given) becomes the search_path.

    The app's journal mode is left as the app set it (no WAL switch on someone else's database).
    """
    return open_engine(url, schema=schema, sqlite_begin=_on_sqlite_begin, what="app database")


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
