"""Tombstone tables: where a hard delete leaves the deleted key, its last version and when it went."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from connectors.app.codec import BadValueError, Codec, micros
from connectors.app.layout import Layout
from connectors.app.mapping import Tombstone
from connectors.app.problems import Place
from connectors.app.records import Stored
from engine.model import Version

_T = TypeVar("_T")


class Tombstones:
    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    @staticmethod
    def poll_column(layout: Layout) -> str | None:
        """The tombstone column polled alongside the entity's own poll column."""
        tomb = layout.tombstone
        if tomb is None:
            return None
        return tomb.version_column if layout.spec.poll_by == "version" else tomb.deleted_at_column

    def bury(self, conn: sa.Connection, layout: Layout, key: Any, last: Version, now: datetime) -> Version:
        """Record the delete of `key` (last at version `last`); the delete's own version."""
        tomb = layout.tombstone
        assert tomb is not None
        seq = last.seq + 1 if tomb.version_column else micros(now)
        values: dict[str, Any] = {tomb.key_column: self._key(layout, key)}
        if tomb.version_column:
            if layout.spec.poll_by == "version":
                top: sa.Select[Any] = sa.select(sa.func.max(sa.column(tomb.version_column))).select_from(
                    sa.table(tomb.table)
                )
                seq = max(seq, (conn.execute(top).scalar() or 0) + 1)
            values[tomb.version_column] = seq
        if tomb.deleted_at_column:
            values[tomb.deleted_at_column] = self.codec.write_timestamp(now)
        if tomb.entity_column:
            values[tomb.entity_column] = tomb.entity_value or layout.entity.value
        if tomb.tenant_column:
            values[tomb.tenant_column] = layout.tenant
        conn.execute(sa.insert(sa.table(tomb.table, *(sa.column(c) for c in values))).values(values))
        return Version(seq=seq, at=now)

    def select(
        self,
        conn: sa.Connection,
        layout: Layout,
        where: sa.ColumnElement[bool] | None,
        now: datetime,
        *,
        order: bool = False,
        limit: int | None = None,
    ) -> list[Stored]:
        """Tombstones of `layout`'s entity matching `where`, as delete states (newest last per key)."""
        tomb = layout.tombstone
        if tomb is None:
            return []
        columns: list[sa.ColumnElement[Any]] = [sa.column(tomb.key_column).label("_pk")]
        if tomb.version_column:
            columns.append(sa.column(tomb.version_column).label("_version"))
        if tomb.deleted_at_column:
            columns.append(sa.column(tomb.deleted_at_column).label("_deleted_at"))
        query = sa.select(*columns).select_from(sa.table(tomb.table)).where(*self._own(layout, tomb))
        if where is not None:
            query = query.where(where)
        poll = self.poll_column(layout)
        if order and poll is not None:
            query = query.order_by(sa.column(poll), sa.column(tomb.key_column))
        if limit is not None:
            query = query.limit(limit)
        return [self._stored(layout, row._mapping, now) for row in conn.execute(query)]

    def find(self, conn: sa.Connection, layout: Layout, key: Any, now: datetime) -> Stored | None:
        tomb = layout.tombstone
        if tomb is None:
            return None
        found = self.select(conn, layout, sa.column(tomb.key_column) == self._key(layout, key), now)
        return max(found, key=lambda s: s.version.seq) if found else None

    def _stored(self, layout: Layout, row: Any, now: datetime) -> Stored:
        tomb = layout.tombstone
        assert tomb is not None
        try:
            at = self._read(self.codec.timestamp, row.get("_deleted_at"), tomb.deleted_at_column)
            version = row.get("_version")
            seq = (
                self._read(self.codec.sequence, version, tomb.version_column) if version is not None else None
            )
        except BadValueError as error:
            raw = row.get("_version" if layout.spec.poll_by == "version" else "_deleted_at")
            reason = f"{Place(tomb.table, row['_pk'])}, {error}"
            return Stored(str(row["_pk"]), Version(seq=0, at=now), 0, True, {}, invalid=reason, raw_key=raw)
        if seq is None:
            seq = micros(at) if at else 0
        poll = seq if layout.spec.poll_by == "version" else (micros(at) if at else 0)
        return Stored(str(row["_pk"]), Version(seq=seq, at=at or now), poll, deleted=True, fields={})

    @staticmethod
    def _read(decode: Callable[[Any], _T], value: Any, column: str | None) -> _T:
        try:
            return decode(value)
        except BadValueError as error:
            raise BadValueError(f"column {column}: {error}") from None

    @staticmethod
    def _own(layout: Layout, tomb: Tombstone) -> Sequence[sa.ColumnElement[bool]]:
        own: list[sa.ColumnElement[bool]] = []
        if tomb.entity_column is not None:
            own.append(sa.column(tomb.entity_column) == (tomb.entity_value or layout.entity.value))
        if tomb.tenant_column is not None:
            own.append(sa.column(tomb.tenant_column) == layout.tenant)
        return own

    @staticmethod
    def _key(layout: Layout, key: Any) -> Any:
        return int(key) if layout.tombstone_key_integer else str(key)
