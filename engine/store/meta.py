"""Connections, cursors and the audit trail: the store's bookkeeping around the records themselves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.model import EntityType, Side
from engine.state import AuditAction, AuditEntry, AuditLine, Connection, Counts, Cursor
from engine.store import rows
from engine.store import tables as t
from engine.store.base import SessionBase


class MetaMixin(SessionBase):
    # connections

    def save_connection(self, connection: Connection) -> None:
        """Insert the connection, or overwrite every column of the stored one with the same id."""
        values = rows.connection_values(connection)
        insert = self._insert(t.connections).values(**values)
        changed = {name: insert.excluded[name] for name in values if name != "id"}
        self._conn.execute(insert.on_conflict_do_update(index_elements=["id"], set_=changed))

    def get_connection(self, connection_id: str) -> Connection | None:
        row = self._one(sa.select(t.connections).where(t.connections.c.id == connection_id))
        return None if row is None else rows.to_connection(row)

    def lock_connection(self, connection_id: str) -> Connection | None:
        """Read the connection holding its row until the transaction ends (SELECT ... FOR UPDATE on
        PostgreSQL; SQLite sessions are serialized already). Token refresh is single-flight through it."""
        statement = sa.select(t.connections).where(t.connections.c.id == connection_id).with_for_update()
        row = self._one(statement)
        return None if row is None else rows.to_connection(row)

    def list_connections(self) -> list[Connection]:
        statement = sa.select(t.connections).order_by(t.connections.c.id)
        return [rows.to_connection(r) for r in self._all(statement)]

    # cursors

    def get_cursor(self, connection: str, side: Side, entity: EntityType) -> Cursor | None:
        c = t.cursors.c
        row = self._one(
            sa.select(t.cursors).where(
                c.connection == connection, c.side == side.value, c.entity == entity.value
            )
        )
        return None if row is None else rows.to_cursor(row)

    def save_cursor(self, cursor: Cursor) -> None:
        """Insert or move the cursor of (connection, side, entity)."""
        insert = self._insert(t.cursors).values(
            connection=cursor.connection,
            side=cursor.side.value,
            entity=cursor.entity.value,
            position=cursor.position,
            updated_at=cursor.updated_at,
        )
        changed = {"position": insert.excluded.position, "updated_at": insert.excluded.updated_at}
        self._conn.execute(
            insert.on_conflict_do_update(index_elements=["connection", "side", "entity"], set_=changed)
        )

    def last_synced(self, connection: str) -> dict[tuple[Side, str], datetime]:
        """When each side last had changes read from it ("read": its newest cursor move) and written
        to it ("written": the newest write recorded in the audit trail), by (side, kind)."""
        found: dict[tuple[Side, str], datetime] = {}
        c, a = t.cursors.c, t.audit.c
        reads = (
            sa.select(c.side, sa.func.max(c.updated_at)).where(c.connection == connection).group_by(c.side)
        )
        writes = (
            sa.select(a.side, sa.func.max(a.at))
            .where(a.connection == connection, a.action == AuditAction.WRITTEN.value, a.side.is_not(None))
            .group_by(a.side)
        )
        for kind, statement in (("read", reads), ("written", writes)):
            for side, at in self._conn.execute(statement):
                if at is not None:
                    found[(Side(side), kind)] = at if at.tzinfo else at.replace(tzinfo=UTC)
        return found

    # audit

    def audit_many(self, lines: Sequence[AuditLine]) -> None:
        """Append lines to the audit trail, in their order (never updated, never deleted): the one
        function that writes audit rows, whether one line or a page's."""
        if lines:
            self._conn.execute(sa.insert(t.audit), [_audit_values(line) for line in lines])

    def counts(self, connection: str) -> Counts:
        """Rows per status (journal, ops, conflicts) and per action (audit), and the number of links."""

        def by(table: sa.Table, column: str) -> dict[str, int]:
            key = table.c[column]
            statement = sa.select(key, sa.func.count()).where(table.c.connection == connection).group_by(key)
            return {str(name): int(n) for name, n in self._conn.execute(statement)}

        links = self._conn.execute(
            sa.select(sa.func.count()).select_from(t.links).where(t.links.c.connection == connection)
        ).scalar_one()
        return Counts(
            journal=by(t.journal, "status"),
            ops=by(t.ops, "status"),
            conflicts=by(t.conflicts, "status"),
            audit=by(t.audit, "action"),
            links=int(links),
        )

    def history(
        self,
        connection: str | None = None,
        link_id: str | None = None,
        side: Side | None = None,
        external_id: str | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        """The newest `limit` audit lines matching every filter given, in the order they happened."""
        a = t.audit.c
        statement = sa.select(t.audit)
        if connection is not None:
            statement = statement.where(a.connection == connection)
        if link_id is not None:
            statement = statement.where(a.link_id == link_id)
        if side is not None:
            statement = statement.where(a.side == side.value)
        if external_id is not None:
            statement = statement.where(a.external_id == external_id)
        newest = self._all(statement.order_by(a.id.desc()).limit(limit))
        return [rows.to_audit_entry(r) for r in reversed(newest)]


def _audit_values(line: AuditLine) -> dict[str, Any]:
    return {
        "connection": line.connection,
        "entity": line.entity.value,
        "link_id": line.link_id,
        "side": None if line.side is None else line.side.value,
        "external_id": line.external_id,
        "action": line.action.value,
        "detail": line.detail or {},
        "at": line.at,
    }
