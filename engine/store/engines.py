"""Opening SQLAlchemy engines the way ledgersync needs them, for the state store and the app database.

SQLite: foreign keys on, a busy timeout, and BEGIN issued by us (not the sqlite3 driver) so a caller
can take the write lock up front. PostgreSQL: an optional schema becomes every connection's
search_path. The state store and the SQL app connector differ only in the hooks they pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from engine import jsontext
from engine.errors import ConfigurationError

#: How long a SQLite transaction waits for another one's write lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: JSON columns are written and read through orjson (the store's journal, snapshots, ops, audit).
_JSON_CODEC: dict[str, Any] = {"json_serializer": jsontext.dumps_text, "json_deserializer": jsontext.loads}


def _sqlite_pragmas(extra: Sequence[str]) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" hook issues BEGIN
        cursor = dbapi_connection.cursor()
        try:
            for pragma in (*extra, "PRAGMA foreign_keys=ON", f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"):
                cursor.execute(pragma)
        finally:
            cursor.close()

    return on_connect


def open_engine(
    url: str,
    *,
    schema: str | None = None,
    sqlite_begin: Callable[[sa.Connection], None],
    sqlite_pragmas: Sequence[str] = (),
    what: str = "database",
) -> sa.Engine:
    """An engine on `url`; `sqlite_begin` issues BEGIN on SQLite (e.g. BEGIN IMMEDIATE for writers)."""
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as error:
        raise ConfigurationError(f"not a {what} URL: {url!r}") from error
    if parsed.get_backend_name() == "sqlite":
        if schema is not None:
            raise ConfigurationError("a schema applies to PostgreSQL only", detail=url)
        engine = sa.create_engine(parsed, **_JSON_CODEC)
        sa.event.listen(engine, "connect", _sqlite_pragmas(sqlite_pragmas))
        sa.event.listen(engine, "begin", sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigurationError(f"bad schema name {schema!r}")
        connect_args["options"] = f"-csearch_path={schema}"
    try:
        return sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True, **_JSON_CODEC)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise ConfigurationError(f"cannot open the {what} {parsed.drivername!r}: {error}") from error
