"""Ops, the write ledger and conflicts: what the engine decided, what it wrote, what waits for a human."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from engine.errors import VersionConflictError
from engine.model import EntityType, Side
from engine.plan import FieldConflict, Op, OpStatus
from engine.state import Conflict, ConflictStatus, LedgerEntry, OpRecord
from engine.store import rows
from engine.store import tables as t
from engine.store.bulk import BulkMixin
from engine.store.errors import NotStoredError


class WorkMixin(BulkMixin):
    # ops

    def add_op(self, op: Op, now: datetime) -> None:
        """Persist a planned op as pending. An op id already stored is left as it is (replayed plans).

        NotStoredError when its link does not exist (the link is created before its ops).
        `fields` are stored in JSON form and come back in JSON form (Decimal and date as strings).
        """
        next_position = sa.select(sa.func.coalesce(sa.func.max(t.ops.c.position), 0) + 1).scalar_subquery()
        insert = self._insert(t.ops).values(
            **rows.op_values(op),
            position=next_position,
            status=OpStatus.PENDING.value,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        try:
            self._conn.execute(insert.on_conflict_do_nothing(index_elements=["op_id"]))
        except IntegrityError as error:  # the only other constraint: the link must exist
            raise NotStoredError(f"op {op.op_id} names no stored link {op.link_id!r}") from error

    def get_op(self, op_id: str) -> OpRecord | None:
        row = self._one(sa.select(t.ops).where(t.ops.c.op_id == op_id))
        return None if row is None else rows.to_op_record(row)

    def set_op_status(
        self, op_id: str, status: OpStatus, now: datetime, error: str | None = None, attempt: bool = False
    ) -> None:
        """Move an op to `status`; `attempt` counts one more try; an `error` replaces the last one
        (None keeps it, so a parked op still says why). NotStoredError for an unknown op id.
        """
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if attempt:
            values["attempts"] = t.ops.c.attempts + 1
        if error is not None:
            values["last_error"] = error
        result = self._conn.execute(sa.update(t.ops).where(t.ops.c.op_id == op_id).values(values))
        if result.rowcount != 1:
            raise NotStoredError(f"no op {op_id!r}")

    def ops(
        self, connection: str, statuses: Sequence[OpStatus], link_id: str | None = None
    ) -> list[OpRecord]:
        """The connection's ops in any of `statuses` (of one link, if given), oldest first."""
        statement = sa.select(t.ops).where(
            t.ops.c.connection == connection, t.ops.c.status.in_([s.value for s in statuses])
        )
        if link_id is not None:
            statement = statement.where(t.ops.c.link_id == link_id)
        statement = statement.order_by(t.ops.c.position, t.ops.c.op_id)
        return [rows.to_op_record(r) for r in self._all(statement)]

    def ops_page(
        self, connection: str, statuses: Sequence[OpStatus], after: tuple[int, str], limit: int
    ) -> tuple[list[OpRecord], tuple[int, str]]:
        """Up to `limit` of the connection's ops in `statuses` placed after `after` (position, op id),
        oldest first, as `ops` lists them; and the (position, op id) of the last one (`after` when there
        is none): where the next page starts. Positions start at 1: the first page is after (0, "")."""
        o = t.ops
        statement = (
            sa.select(o)
            .where(
                o.c.connection == connection,
                o.c.status.in_([s.value for s in statuses]),
                sa.tuple_(o.c.position, o.c.op_id) > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])),
            )
            .order_by(o.c.position, o.c.op_id)
            .limit(limit)
        )
        found = self._all(statement)
        last = (int(found[-1]["position"]), str(found[-1]["op_id"])) if found else after
        return [rows.to_op_record(r) for r in found], last

    # ledger

    def record_write(self, entry: LedgerEntry) -> None:
        """Remember a version our own write produced; recording the same version again is a no-op."""
        self.record_writes([entry])

    def ledger_for(
        self, connection: str, side: Side, entity: EntityType, external_id: str
    ) -> list[LedgerEntry]:
        """The versions our writes produced for one record, lowest seq first."""
        return self.ledger_of_records(connection, entity, side, [external_id]).get(external_id, [])

    # conflicts

    def open_conflict(
        self, connection: str, link_id: str, entity: EntityType, conflict: FieldConflict, now: datetime
    ) -> Conflict:
        """Open the conflict on (link, field), or refresh the values and policy of the one open there.

        Values are in JSON form. A refreshed conflict keeps its id and created_at. NotStoredError
        when the link does not exist.
        """
        values = {
            "base": conflict.base,
            "app": conflict.app,
            "quickbooks": conflict.quickbooks,
            "policy": conflict.policy.value,
        }
        c = t.conflicts
        is_open = sa.and_(c.c.link_id == link_id, c.c.field == conflict.field, c.c.status == "open")
        existing = self._one(sa.select(c.c.id).where(is_open))
        if existing is None:
            if self._one(sa.select(t.links.c.id).where(t.links.c.id == link_id)) is None:
                raise NotStoredError(f"conflict names no stored link {link_id!r}")
            statement: sa.Executable = (
                sa.insert(c)
                .values(
                    connection=connection,
                    link_id=link_id,
                    entity=entity.value,
                    field=conflict.field,
                    status=ConflictStatus.OPEN.value,
                    created_at=now,
                    **values,
                )
                .returning(*c.columns)
            )
        else:
            statement = sa.update(c).where(c.c.id == existing["id"]).values(**values).returning(*c.columns)
        try:
            row = self._conn.execute(statement).mappings().one()
        except IntegrityError as error:  # another worker opened it between our read and insert
            raise VersionConflictError(f"conflict on {conflict.field} opened meanwhile") from error
        return rows.to_conflict(row)

    def resolved_ops(self, connection: str | None, since: datetime) -> list[str]:
        """Pending, untried ops of records whose conflict was resolved at or after `since`, oldest
        first: a reviewer's choice, made in another process, that no worker has been told about.
        `connection` None: every connection's (one query, however many companies)."""
        c, o = t.conflicts, t.ops
        resolved = sa.select(c.c.link_id).where(
            c.c.status == ConflictStatus.RESOLVED.value,
            c.c.resolved_at >= since,
        )
        pending = [o.c.status == OpStatus.PENDING.value, o.c.attempts == 0]
        if connection is not None:
            resolved = resolved.where(c.c.connection == connection)
            pending.append(o.c.connection == connection)
        statement = sa.select(o.c.op_id).where(*pending, o.c.link_id.in_(resolved)).order_by(o.c.position)
        return [row.op_id for row in self._all(statement)]

    def get_conflict(self, conflict_id: int) -> Conflict | None:
        row = self._one(sa.select(t.conflicts).where(t.conflicts.c.id == conflict_id))
        return None if row is None else rows.to_conflict(row)

    def list_conflicts(
        self, connection: str | None = None, open_only: bool = True, link_id: str | None = None
    ) -> list[Conflict]:
        """Conflicts (of one connection, of one record, if given; open ones only, unless told), oldest
        first. A decision asks for its own record's only, so open conflicts elsewhere cost it nothing."""
        statement = sa.select(t.conflicts).order_by(t.conflicts.c.id)
        if connection is not None:
            statement = statement.where(t.conflicts.c.connection == connection)
        if link_id is not None:
            statement = statement.where(t.conflicts.c.link_id == link_id)
        if open_only:
            statement = statement.where(t.conflicts.c.status == ConflictStatus.OPEN.value)
        return [rows.to_conflict(r) for r in self._all(statement)]

    def resolve_conflict(self, conflict_id: int, value: Any, by: str, now: datetime) -> Conflict:
        """Close an open conflict with `value` (JSON form), chosen by `by`.

        NotStoredError for an unknown id; VersionConflictError if it was already resolved (by someone
        else, meanwhile): the caller re-reads rather than overwriting that decision.
        """
        c = t.conflicts
        result = self._conn.execute(
            sa.update(c)
            .where(c.c.id == conflict_id, c.c.status == ConflictStatus.OPEN.value)
            .values(status=ConflictStatus.RESOLVED.value, resolution=value, resolved_by=by, resolved_at=now)
            .returning(*c.columns)
        )
        row = result.mappings().first()
        if row is not None:
            return rows.to_conflict(row)
        current = self.get_conflict(conflict_id)
        if current is None:
            raise NotStoredError(f"no conflict {conflict_id}")
        raise VersionConflictError(
            f"conflict {conflict_id} is already resolved", detail=f"by {current.resolved_by}"
        )
