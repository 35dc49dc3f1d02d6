"""A cheap "anything new?" check of the app database, so it can be asked every second for nearly nothing.

Per entity it reads one mark, each an indexed `max()`: the newest poll key of the table and of its
tombstones (polling), or the outbox's newest id (outbox capture on SQLite, where ids are the commit
order). On PostgreSQL the mark is the entity's newest outbox `txid` and, while that is not below
the oldest transaction running on the server, that transaction too: an older transaction that
commits later (its rows below the newest `txid`) moves the mark when it ends.

An entity whose mark moved since the last check is worth a poll; the first check names every entity.
The probe only hurries reads: a change it cannot see (a late commit whose poll key is below one
already read) is read by the scheduled poll, which stays the guarantee; the read is what is exact.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from connectors.app.database import is_postgres, translate
from connectors.app.layout import Layout
from connectors.app.outbox import outbox_table
from engine.model import EntityType

_HORIZON = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


class ChangeProbe:
    def __init__(self, engine: sa.Engine, layouts: dict[EntityType, Layout], outbox: str) -> None:
        self.engine = engine
        self.layouts = layouts
        self.outbox = outbox_table(outbox)
        self._last: dict[EntityType, Hashable] = {}

    def changed(self) -> list[EntityType]:
        """The entities whose mark moved since the last call (all of them on the first)."""
        marks = self.marks()
        moved = [e for e, mark in marks.items() if e not in self._last or self._last[e] != mark]
        self._last = marks
        return moved

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
