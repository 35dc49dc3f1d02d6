"""A cheap "anything new?" check of the app database, so it can be asked every second for nearly nothing.

Per entity it reads one mark, each an indexed `max()`: the newest poll key of the table and of its
tombstones (polling), or the outbox's newest id (outbox capture on SQLite, where ids are the commit
order). On PostgreSQL the mark is the entity's newest outbox `txid` and, while that is not below
the oldest transaction running on the server, that transaction too: an older transaction that
commits later (its rows below the newest `txid`) moves the mark when it ends.

An entity whose mark moved since the last check is worth a poll; the first check names every entity.
With a tenant column (one database shared by many tenants), `moved()` also says whose rows moved:
the tenants with rows at or above the table's previous mark (an indexed range, grouped by tenant), so
one tenant's edit hurries its own connection's read, not every connection's. The probe only hurries
reads: a change it cannot see (a late commit whose poll key is below one
already read) is read by the scheduled poll, which stays the guarantee; the read is what is exact.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from connectors.app.database import is_postgres, translate
from connectors.app.layout import Layout
from connectors.app.outbox import outbox_table
from engine.model import EntityType

_HORIZON = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")

#: What moved: per entity, the tenants whose rows moved (None: any tenant's, so every connection's).
Moved = Mapping[EntityType, frozenset[str] | None]


class ChangeProbe:
    def __init__(self, engine: sa.Engine, layouts: dict[EntityType, Layout], outbox: str) -> None:
        self.engine = engine
        self.layouts = layouts
        self.outbox = outbox_table(outbox)
        self._last: dict[EntityType, Hashable] = {}
        #: Per (entity, table): each tenant's newest poll key seen at or above the table's mark.
        self._tenants: dict[tuple[EntityType, str], dict[str, Any]] = {}

    def changed(self) -> list[EntityType]:
        """The entities whose mark moved since the last call (all of them on the first)."""
        return list(self.moved())

    def moved(self) -> dict[EntityType, frozenset[str] | None]:
        """The entities whose mark moved since the last call (all on the first), each with the
        tenants whose rows moved (None: unknown, or the mapping has no tenant column)."""
        last = self._last
        marks = self.marks()
        self._last = marks
        found: dict[EntityType, frozenset[str] | None] = {}
        for entity, mark in marks.items():
            if entity in last and last[entity] == mark:
                continue
            before = last.get(entity)
            found[entity] = None if before is None else self._whose(entity, before, mark)
        return found

    def _whose(self, entity: EntityType, before: Hashable, now: Hashable) -> frozenset[str] | None:
        """The tenants whose rows of `entity` moved from mark `before` to `now` (None: any)."""
        layout = self.layouts[entity]
        spec = layout.spec
        if spec.tenant_column is None or spec.capture.mode == "outbox":
            return None
        assert isinstance(before, tuple) and isinstance(now, tuple)
        key = spec.version_column if spec.poll_by == "version" else spec.updated_at_column
        assert key is not None
        nothing: tuple[str, str] | None = None
        sources = [(spec.table, spec.tenant_column, key, nothing, before[0], now[0])]
        tomb = layout.tombstone
        if len(now) > 1 and before[1] != now[1]:
            if tomb is None or tomb.tenant_column is None:
                return None
            tomb_key = tomb.version_column if spec.poll_by == "version" else tomb.deleted_at_column
            assert tomb_key is not None  # the mark has a tombstone part only with one
            kind = None
            if tomb.entity_column is not None:
                kind = (tomb.entity_column, tomb.entity_value or entity.value)
            sources.append((tomb.table, tomb.tenant_column, tomb_key, kind, before[1], now[1]))
        tenants: set[str] = set()
        try:
            with self.engine.connect() as conn:
                for table, column, poll_key, kind, since, mark in sources:
                    if since == mark:
                        continue
                    seen = self._tenants.setdefault((entity, table), {})
                    for tenant, newest in self._newest(conn, table, column, poll_key, kind, since):
                        name = str(tenant)
                        if name not in seen or seen[name] != newest:
                            tenants.add(name)
                        seen[name] = newest
        except exc.SQLAlchemyError as error:
            raise translate(error) from error
        return frozenset(tenants)

    @staticmethod
    def _newest(
        conn: sa.Connection,
        table: str,
        tenant_column: str,
        key: str,
        kind: tuple[str, str] | None,
        since: Any,
    ) -> list[tuple[Any, Any]]:
        """(tenant, newest poll key) of the tenants with rows at or above `since`."""
        newest: sa.ColumnElement[Any] = sa.func.max(sa.column(key))
        query: sa.Select[Any] = sa.select(sa.column(tenant_column), newest).select_from(sa.table(table))
        if since is not None:
            query = query.where(sa.column(key) >= since)
        if kind is not None:
            query = query.where(sa.column(kind[0]) == kind[1])
        rows = conn.execute(query.group_by(sa.column(tenant_column))).all()
        return [(row[0], row[1]) for row in rows]

    def marks(self) -> dict[EntityType, Hashable]:
        try:
            with self.engine.connect() as conn:
                outbox = self._outbox(conn)
                return {
                    entity: outbox[entity] if entity in outbox else self._polled(conn, layout)
                    for entity, layout in self.layouts.items()
                }
        except exc.SQLAlchemyError as error:
            raise translate(error) from error

    def _outbox(self, conn: sa.Connection) -> dict[EntityType, Hashable]:
        entities = [e for e, layout in self.layouts.items() if layout.spec.capture.mode == "outbox"]
        if not entities:
            return {}
        t = self.outbox
        if not is_postgres(conn):
            newest = conn.execute(sa.select(sa.func.max(t.c.id))).scalar()
            return dict.fromkeys(entities, newest)
        horizon = conn.execute(_HORIZON).scalar()
        marks: dict[EntityType, Hashable] = {}
        for entity in entities:
            txid = conn.execute(sa.select(sa.func.max(t.c.txid)).where(t.c.entity == entity.value)).scalar()
            held = txid is not None and horizon is not None and int(txid) >= int(horizon)
            marks[entity] = (txid, horizon if held else None)
        return marks

    @staticmethod
    def _polled(conn: sa.Connection, layout: Layout) -> Hashable:
        spec = layout.spec
        column = spec.version_column if spec.poll_by == "version" else spec.updated_at_column
        assert column is not None
        mark: tuple[Hashable, ...] = (
            conn.execute(sa.select(sa.func.max(sa.column(column))).select_from(layout.table)).scalar(),
        )
        tomb = layout.tombstone
        if tomb is not None:
            key = tomb.version_column if spec.poll_by == "version" else tomb.deleted_at_column
            if key is not None:
                newest: sa.ColumnElement[Any] = sa.func.max(sa.column(key))
                query: sa.Select[Any] = sa.select(newest).select_from(sa.table(tomb.table))
                if tomb.entity_column is not None:
                    query = query.where(
                        sa.column(tomb.entity_column) == (tomb.entity_value or layout.entity.value)
                    )
                mark += (conn.execute(query).scalar(),)
        return mark
