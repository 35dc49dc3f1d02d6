"""The shared core of the store's session classes: the open connection and the statement helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import ConfigurationError
from engine.model import Side
from engine.state import RecordKey


def record_filter(table: sa.Table, key: RecordKey) -> sa.ColumnElement[bool]:
    """Rows of `table` about one record on one side."""
    return sa.and_(
        table.c.connection == key.connection,
        table.c.side == key.side.value,
        table.c.entity == key.entity.value,
        table.c.external_id == key.external_id,
    )


def id_column(side: Side) -> str:
    """The links column holding a record's id on `side`."""
    return "app_id" if side is Side.APP else "quickbooks_id"


class SessionBase:
    """Holds the transaction's connection; each concept's mixin builds on it."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def _one(self, statement: sa.Executable) -> sa.RowMapping | None:
        return self._conn.execute(statement).mappings().first()

    def _all(self, statement: sa.Executable) -> Sequence[sa.RowMapping]:
        return self._conn.execute(statement).mappings().all()

    def _among(self, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
        """`column IN values`; on PostgreSQL `column = ANY(array)`, one parameter however many values:
        psycopg parses a statement's text again whenever it is too long to cache (a few hundred
        expanded parameters are), and binds each value on its own."""
        if self._conn.dialect.name == "postgresql":
            return column == sa.any_(sa.literal(list(values), type_=postgresql.ARRAY(column.type)))
        return column.in_(values)

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """The dialect's INSERT, which knows ON CONFLICT; only SQLite and PostgreSQL are supported."""
        name = self._conn.dialect.name
        if name == "postgresql":
            return postgresql.insert(table)
        if name == "sqlite":
            return sqlite.insert(table)
        raise ConfigurationError(
            f"unsupported state store database {name!r}", detail="use SQLite or PostgreSQL"
        )
