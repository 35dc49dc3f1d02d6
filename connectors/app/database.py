"""The app database: engines set up for the connector, its transactions, and the table of foreign errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from connectors.app.codec import Unreadable
from engine.errors import ConfigurationError, LedgersyncError, RecordRejectedError, UpstreamUnavailableError
from engine.store.engines import open_engine

log = logging.getLogger(__name__)


def _on_sqlite_begin(conn: sa.Connection) -> None:
    # Writes take the lock up front so a transaction never fails half-way on "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("ledgersync_write") else "BEGIN")


def make_engine(url: str, *, schema: str | None = None) -> sa.Engine:
    """An engine on the app database; on PostgreSQL `schema` (if given) becomes the search_path.

    The app's journal mode is left as the app set it (no WAL switch on someone else's database).
    A value the driver cannot convert (text that is not UTF-8 on SQLite, a date beyond year 9999 or
    'infinity' on PostgreSQL) comes back as a value the codec rejects, so one bad row is parked
    instead of failing every read of its page.
    """
    engine = open_engine(url, schema=schema, sqlite_begin=_on_sqlite_begin, what="app database")
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _tolerant_sqlite)
    elif engine.dialect.driver == "psycopg":
        sa.event.listen(engine, "connect", _tolerant_psycopg)
    return engine


def _sqlite_text(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data  # the codec names it: bytes that are not UTF-8 text


def _tolerant_sqlite(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.text_factory = _sqlite_text


def _tolerant_psycopg(dbapi_connection: Any, _record: Any) -> None:
    import psycopg
    from psycopg.types import datetime as pg_datetime

    def tolerant(base: type[Any]) -> type[Any]:
        class Tolerant(base):  # type: ignore[misc]
            def load(self, data: Any) -> Any:
                try:
                    return super().load(data)
                except psycopg.DataError as error:
                    return Unreadable(bytes(data).decode("utf-8", "replace"), str(error).split(":")[0])

        return Tolerant

    for name, base in (
        ("date", pg_datetime.DateLoader),
        ("timestamp", pg_datetime.TimestampLoader),
        ("timestamptz", pg_datetime.TimestamptzLoader),
    ):
        dbapi_connection.adapters.register_loader(name, tolerant(base))


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
