"""Write-back: one op in one transaction, checked against the version it was planned from, applied once."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import exc

from connectors.app import applied
from connectors.app.codec import Codec
from connectors.app.fields import ADDRESS_PARTS, CHILD_FIELDS, REF_TARGETS, Kind
from connectors.app.layout import Layout
from connectors.app.mapping import Mapping
from connectors.app.records import Reader, Stored
from connectors.app.tombstones import Tombstones
from engine.errors import ConfigurationError, NotFoundError, RecordRejectedError, VersionConflictError
from engine.model import EntityType, Ref, Side, Version, parse_record, record_fields
from engine.plan import Op, OpKind
from engine.ports import Clock, WriteResult

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")
_NAME_LISTS = frozenset({EntityType.CUSTOMER, EntityType.ITEM})
#: Fields whose change is written one op at a time: the child collections and the references.
_SENT_ALONE = frozenset({"customer", *(names[0] for names in CHILD_FIELDS.values())})


class _AlreadyAppliedError(Exception):
    """Another transaction recorded the same op id first (a concurrent retry)."""


class _SetRefusedError(Exception):
    """A set of writes did not read back as written; it is rolled back and written one by one."""


@dataclass(frozen=True)
class _Planned:
    """One plain field change of a set: the op, its place among the batch's ops, the columns it sets."""

    index: int
    op: Op
    layout: Layout
    key: Any
    values: dict[str, Any]


class Writer:
    def __init__(
        self,
        mapping: Mapping,
        layouts: dict[EntityType, Layout],
        codec: Codec,
        reader: Reader,
        tombstones: Tombstones,
        clock: Clock,
    ) -> None:
        self.mapping = mapping
        self.layouts = layouts
        self.codec = codec
        self.reader = reader
        self.tombstones = tombstones
        self.clock = clock

    def apply(self, conn: sa.Connection, op: Op) -> WriteResult:
        """Apply `op` on `conn` (an open write transaction) and record its result with it."""
        done = applied.stored_result(conn, op.op_id)
        if done is not None:
            log.debug("op %s already applied in the app database", op.op_id)
            return done
        result = self._write(conn, op)
        try:
            with conn.begin_nested():
                applied.remember(conn, op.op_id, op.entity, result, self.clock.now())
        except exc.IntegrityError as error:
            raise _AlreadyAppliedError(op.op_id) from error
        return result

    def apply_each(self, conn: sa.Connection, ops: Sequence[Op]) -> list[WriteResult | Exception]:
        """Apply many ops on `conn` (an open write transaction): an op the app refuses fails alone and
        its error takes its place. Results stored already (a replay) are read in one statement; an op
        another transaction records meanwhile comes back as the replay error (`is_replay`).

        Plain field changes of records read here are written as a set (`_apply_set`: one UPDATE per
        set of columns, one read-back, one insert of their results); every other op, and every op
        of a set the database refuses, is applied alone in a savepoint of its own."""
        done = applied.stored_results(conn, [op.op_id for op in ops])
        current = self._current(conn, [op for op in ops if op.op_id not in done])
        outcomes: dict[int, WriteResult | Exception] = {
            i: done[op.op_id] for i, op in enumerate(ops) if op.op_id in done
        }
        outcomes.update(self._apply_set(conn, ops, outcomes.keys(), current))
        for i, op in enumerate(ops):
            if i in outcomes:
                continue
            try:
                with conn.begin_nested():
                    result = self._write(conn, op, current.get((op.entity, op.external_id)))
                    try:
                        applied.remember(conn, op.op_id, op.entity, result, self.clock.now())
                    except exc.IntegrityError as error:
                        raise _AlreadyAppliedError(op.op_id) from error
                outcomes[i] = result
            except Exception as error:  # the caller sorts them: ours, the database's, a replay
                outcomes[i] = error
        return [outcomes[i] for i in range(len(ops))]

    def _apply_set(
        self,
        conn: sa.Connection,
        ops: Sequence[Op],
        skip: Collection[int],
        current: dict[tuple[EntityType, str | None], Stored],
    ) -> dict[int, WriteResult | Exception]:
        """The outcomes of the plain field changes among `ops` (updates and inactivations of records
        in `current`, sending no child rows and no references), written as a set in one savepoint.
        An op the app refuses before any write (an invalid value, a stale version) gets its error
        here; when the database refuses the set, nothing of it stays and the ops are left (absent
        from the answer) for the one-by-one path, which finds the culprit."""
        now = self.clock.now()
        outcomes: dict[int, WriteResult | Exception] = {}
        planned: list[_Planned] = []
        tops: dict[EntityType, int] = {}
        for i, op in enumerate(ops):
            stored = current.get((op.entity, op.external_id))
            layout = self.layouts.get(op.entity)
            if i in skip or stored is None or stored.deleted or layout is None:
                continue
            if op.kind not in (OpKind.UPDATE, OpKind.INACTIVATE) or op.side is not Side.APP:
                continue
            if _SENT_ALONE & op.fields.keys():
                continue  # child rows are replaced, references checked: one by one
            try:
                _check_version(layout, op, stored)
                values = self._changed_values(layout, op, stored)
                spec = layout.spec
                if spec.version_column is not None and spec.poll_by == "version":
                    # One read of the table's top version for the set; each write takes the next.
                    if layout.entity not in tops:
                        tops[layout.entity] = self._top_version(conn, layout)
                    tops[layout.entity] += 1
                    values[spec.version_column] = tops[layout.entity]
                else:
                    values.update(self._stamp(conn, layout, stored, now))
            except Exception as error:  # nothing was written; the caller sorts it as it sorts any op's
                outcomes[i] = error
                continue
            planned.append(_Planned(i, op, layout, self._key(layout, stored.external_id), values))
        if not planned:
            return outcomes
        try:
            with conn.begin_nested():
                outcomes.update(self._write_set(conn, planned, now))
        except (exc.SQLAlchemyError, _SetRefusedError) as error:
            log.info("app set of %d writes refused (%s); writing them one by one", len(planned), error)
        return outcomes

    def _write_set(
        self, conn: sa.Connection, planned: list[_Planned], now: datetime
    ) -> dict[int, WriteResult]:
        groups: dict[tuple[EntityType, tuple[str, ...]], list[_Planned]] = {}
        for p in planned:
            groups.setdefault((p.layout.entity, tuple(p.values)), []).append(p)
        for (_, columns), members in groups.items():
            layout = members[0].layout
            names = {column: f"v{n}" for n, column in enumerate(columns)}
            statement = (
                sa.update(_table(layout.spec.table, columns))
                .where(layout.scope(layout.pk == sa.bindparam("k")))
                .values({column: sa.bindparam(name) for column, name in names.items()})
            )
            rows = [{"k": p.key, **{names[c]: v for c, v in p.values.items()}} for p in members]
            conn.execute(statement, rows)
        results: dict[int, WriteResult] = {}
        by_entity: dict[EntityType, list[_Planned]] = {}
        for p in planned:
            by_entity.setdefault(p.layout.entity, []).append(p)
        for members in by_entity.values():
            layout = members[0].layout
            found = {
                s.external_id: s
                for s in self.reader.select(conn, layout, layout.pk.in_([p.key for p in members]), now)
            }
            for p in members:
                stored = found.get(str(p.key))
                if stored is None or stored.deleted or stored.invalid is not None:
                    raise _SetRefusedError(f"{layout.entity} {p.key} does not read back as written")
                results[p.index] = WriteResult(
                    external_id=stored.external_id, version=stored.version, fields=stored.fields
                )
        applied.remember_many(
            conn, [(p.op.op_id, p.op.entity, results[p.index]) for p in planned], self.clock.now()
        )
        return results

    def _current(self, conn: sa.Connection, ops: Sequence[Op]) -> dict[tuple[EntityType, str | None], Stored]:
        """The stored rows the changes among `ops` apply to, read (and locked) in one statement per
        entity; a record named by two of them is left out (the second must see the first's write).
        The ops of one batch are of records that do not write each other (the pipeline's waves put
        invoices and the payments applied to them in batches of their own)."""
        named = Counter((op.entity, op.external_id) for op in ops if op.kind is not OpKind.CREATE)
        keys: dict[EntityType, list[Any]] = {}
        for (entity, external_id), times in named.items():
            layout = self.layouts.get(entity)
            if times > 1 or external_id is None or layout is None:
                continue
            try:
                keys.setdefault(entity, []).append(layout.key(external_id))
            except ValueError:
                continue  # not an id of this table: _change says so
        found: dict[tuple[EntityType, str | None], Stored] = {}
        now = self.clock.now()
        for entity, wanted in keys.items():
            layout = self.layouts[entity]
            for stored in self.reader.select(conn, layout, layout.pk.in_(wanted), now, lock=True):
                found[(entity, stored.external_id)] = stored
        return found

    def _write(self, conn: sa.Connection, op: Op, current: Stored | None = None) -> WriteResult:
        if op.side is not Side.APP:
            raise ConfigurationError(f"op {op.op_id} is for the {op.side} side, this connector is the app")
        layout = self.layouts.get(op.entity)
        if layout is None:
            raise RecordRejectedError(f"the mapping has no {op.entity}", code="unmapped")
        now = self.clock.now()
        if op.kind is OpKind.CREATE:
            return self._create(conn, layout, op, now)
        return self._change(conn, layout, op, now, current)

    # kinds

    def _create(self, conn: sa.Connection, layout: Layout, op: Op, now: datetime) -> WriteResult:
        fields = self._validated(layout.entity, op.fields)
        self._check_refs(conn, fields, op.fields.keys())
        values = self._values(layout, fields, op.fields.keys(), create=True)
        values.update(self._stamp(conn, layout, None, now))
        if layout.spec.tenant_column is not None:
            values[layout.spec.tenant_column] = layout.tenant
        table = _table(layout.spec.table, [*values, layout.spec.primary_key])
        inserted = conn.execute(
            sa.insert(table).values(values).returning(table.c[layout.spec.primary_key])
        ).scalar_one()
        self._replace_children(conn, layout, inserted, fields)
        return self._result(conn, layout, inserted, now)

    def _change(
        self, conn: sa.Connection, layout: Layout, op: Op, now: datetime, read: Stored | None = None
    ) -> WriteResult:
        """`read`: the record as read (and locked) for this op already, if it was."""
        if op.external_id is None:
            raise RecordRejectedError(f"op {op.op_id}: a {op.kind} needs an external id", code="invalid")
        self._check_kind(layout.entity, op.kind)
        key = self._key(layout, op.external_id)
        current = (
            [read] if read is not None else self.reader.select(conn, layout, layout.pk == key, now, lock=True)
        )
        if not current or current[0].deleted:
            state = "was deleted" if current else "does not exist"
            raise NotFoundError(f"{layout.entity} {op.external_id} {state} in the app")
        stored = current[0]
        _check_version(layout, op, stored)
        if op.kind is OpKind.DELETE:
            return self._delete(conn, layout, key, stored, now)
        sent, fields = self._sent_fields(layout, op, stored)
        self._check_refs(conn, fields, sent.keys())
        values = self._values(layout, fields, sent.keys(), create=False)
        values.update(self._stamp(conn, layout, stored, now))
        conn.execute(_update(layout, values, key))
        if CHILD_FIELDS.get(layout.entity, ("",))[0] in sent:
            self._replace_children(conn, layout, key, fields)
        return self._result(conn, layout, key, now)

    def _changed_values(self, layout: Layout, op: Op, stored: Stored) -> dict[str, Any]:
        """The columns an update or inactivation of `stored` sets (stamps aside), validated."""
        self._check_kind(layout.entity, op.kind)
        sent, fields = self._sent_fields(layout, op, stored)
        return self._values(layout, fields, sent.keys(), create=False)

    def _sent_fields(self, layout: Layout, op: Op, stored: Stored) -> tuple[dict[str, Any], dict[str, Any]]:
        """What the op sends, and the whole record it makes of `stored` (validated)."""
        sent = self._sent(layout, op, stored)
        return sent, self._validated(layout.entity, {**stored.fields, **sent})

    def _sent(self, layout: Layout, op: Op, stored: Stored) -> dict[str, Any]:
        if op.kind is OpKind.UPDATE:
            return dict(op.fields)
        if op.kind is OpKind.INACTIVATE:
            column = layout.spec.column("active")
            if column is None or not column.writable:
                raise RecordRejectedError(f"the mapping gives {layout.entity} no writable active column")
            return {"active": False}
        # A void keeps the document and zeroes its amounts.
        collection = CHILD_FIELDS[layout.entity][0]
        zeroed = [{**child, "amount": ZERO} for child in stored.fields.get(collection, ())]
        sent: dict[str, Any] = {collection: zeroed}
        for name in ("tax_total", "total", "balance", "home_total"):
            if name in layout.spec.fields:
                sent[name] = ZERO
        return sent

    def _delete(
        self, conn: sa.Connection, layout: Layout, key: Any, stored: Stored, now: datetime
    ) -> WriteResult:
        soft = layout.soft_delete_column
        if soft is not None:
            values = self._stamp(conn, layout, stored, now)
            values[soft] = (
                self.codec.write_timestamp(now)
                if layout.soft_delete_is_time
                else self.codec.write(
                    Kind.BOOL, True, number_flag=layout.flag_is_number(layout.spec.table, soft)
                )
            )
            conn.execute(_update(layout, values, key))
            return self._result(conn, layout, key, now)
        if layout.tombstone is None:
            raise RecordRejectedError(f"the mapping says nothing about how a {layout.entity} is deleted")
        version = self.tombstones.bury(conn, layout, key, stored.version, now)
        child = layout.child
        if child is not None:
            conn.execute(sa.delete(sa.table(child.table)).where(sa.column(child.parent_key) == key))
        conn.execute(sa.delete(layout.table).where(layout.scope(layout.pk == key)))
        return WriteResult(external_id=str(key), version=version, deleted=True)

    # helpers

    @staticmethod
    def _check_kind(entity: EntityType, kind: OpKind) -> None:
        if kind is OpKind.INACTIVATE and entity not in _NAME_LISTS:
            raise RecordRejectedError(f"a {entity} cannot be made inactive", code="unsupported")
        if kind is OpKind.VOID and entity in _NAME_LISTS:
            raise RecordRejectedError(f"a {entity} cannot be voided", code="unsupported")

    def _key(self, layout: Layout, external_id: str) -> Any:
        try:
            return layout.key(external_id)
        except ValueError:
            raise NotFoundError(f"{layout.entity} {external_id!r} is not an id of the app") from None

    @staticmethod
    def _validated(entity: EntityType, fields: dict[str, Any]) -> dict[str, Any]:
        try:
            return record_fields(parse_record(entity, fields))
        except ValidationError as error:
            raise RecordRejectedError(
                f"invalid {entity} for the app", code="invalid", detail=str(error)
            ) from None

    def _check_refs(self, conn: sa.Connection, fields: dict[str, Any], sent: Any) -> None:
        for ref in _references(fields, set(sent)):
            layout = self.layouts.get(ref.entity)
            found: list[Stored] = []
            if layout is not None and ref.side in (None, Side.APP):
                try:
                    key = layout.key(ref.id)
                except ValueError:
                    key = None
                if key is not None:
                    found = self.reader.select(conn, layout, layout.pk == key, self.clock.now())
            if not found or found[0].deleted:
                raise RecordRejectedError(
                    f"references {ref.entity} {ref.id} ({ref.side or 'unsided'}), which is not a live"
                    f" {ref.entity} in the app",
                    code="invalid_reference",
                )

    def _values(self, layout: Layout, fields: dict[str, Any], sent: Any, *, create: bool) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, kind, column in layout.scalar_fields():
            if column.column is not None and (create or name in sent):
                number = layout.flag_is_number(layout.spec.table, column.column)
                values[column.column] = self._value(kind, name, fields.get(name), number)
        address = layout.spec.billing_address
        if address is not None and (create or "billing_address" in sent):
            given = fields.get("billing_address") or {}
            lines = list(given.get("lines", ()))
            if len(lines) > len(address.lines):
                raise RecordRejectedError(
                    f"the address has {len(lines)} lines; the app holds {len(address.lines)}", code="invalid"
                )
            lines += [None] * (len(address.lines) - len(lines))
            values.update(dict(zip(address.lines, lines, strict=True)))
            values.update({getattr(address, p): given.get(p) for p in ADDRESS_PARTS if getattr(address, p)})
        if layout.spec.origin_column is not None:
            values[layout.spec.origin_column] = self.mapping.origin_value
        return values

    def _value(self, kind: Kind, name: str, value: Any, number_flag: bool = False) -> Any:
        if kind is Kind.REF:
            target = self.layouts.get(REF_TARGETS[name])
            return self.codec.write(kind, value, integer_ref=target is not None and target.integer_key)
        return self.codec.write(kind, value, number_flag=number_flag)

    def _stamp(
        self, conn: sa.Connection, layout: Layout, stored: Stored | None, now: datetime
    ) -> dict[str, Any]:
        """The version column and updated_at a write sets: always forward, even if the clock is not."""
        spec = layout.spec
        values: dict[str, Any] = {}
        if spec.version_column is not None:
            if spec.poll_by == "version":
                # Polled versions must grow across the table, not only per row.
                values[spec.version_column] = self._top_version(conn, layout) + 1
            else:
                values[spec.version_column] = (stored.version.seq if stored else 0) + 1
        if spec.updated_at_column is not None:
            at = now if stored is None else max(now, stored.version.at + timedelta(microseconds=1))
            values[spec.updated_at_column] = self.codec.write_timestamp(at)
        return values

    @staticmethod
    def _top_version(conn: sa.Connection, layout: Layout) -> int:
        column = layout.spec.version_column
        assert column is not None
        top: sa.Select[Any] = sa.select(sa.func.max(sa.column(column))).select_from(layout.table)
        return int(conn.execute(top).scalar() or 0)

    def _replace_children(
        self, conn: sa.Connection, layout: Layout, key: Any, fields: dict[str, Any]
    ) -> None:
        child = layout.child
        if child is None:
            return
        columns = [c.column for _, _, c in layout.child_fields() if c.column]
        table = _table(
            child.table, [*columns, child.parent_key, *([child.order_by] if child.order_by else [])]
        )
        conn.execute(sa.delete(table).where(sa.column(child.parent_key) == key))
        rows = []
        for position, given in enumerate(fields.get(CHILD_FIELDS[layout.entity][0], ())):
            row = {
                c.column: self._value(
                    kind, name, given.get(name), layout.flag_is_number(child.table, c.column)
                )
                for name, kind, c in layout.child_fields()
                if c.column
            }
            row[child.parent_key] = key
            if child.order_by:
                row[child.order_by] = position + 1
            rows.append(row)
        for row in rows:
            conn.execute(sa.insert(table).values(row))

    def _result(self, conn: sa.Connection, layout: Layout, key: Any, now: datetime) -> WriteResult:
        stored = self.reader.select(conn, layout, layout.pk == key, now)[0]
        if stored.invalid is not None:
            raise RecordRejectedError(f"{layout.entity} {key} reads back invalid: {stored.invalid}")
        fields = {} if stored.deleted else stored.fields
        return WriteResult(
            external_id=stored.external_id, version=stored.version, fields=fields, deleted=stored.deleted
        )


def _check_version(layout: Layout, op: Op, stored: Stored) -> None:
    """A write planned from another version than the app holds now is a version conflict."""
    if op.expected_seq is not None and op.expected_seq != stored.version.seq:
        raise VersionConflictError(
            f"{layout.entity} {op.external_id} in the app is at version {stored.version.seq}",
            detail=f"the write expected {op.expected_seq}",
        )


def _references(fields: dict[str, Any], sent: set[str]) -> Iterator[Ref]:
    """Each reference among the sent top-level fields (python form: Ref dicts)."""
    if "customer" in sent and fields.get("customer"):
        yield Ref.model_validate(fields["customer"])
    for collection, name in (("lines", "item"), ("applications", "invoice")):
        if collection in sent:
            yield from (Ref.model_validate(c[name]) for c in fields.get(collection, ()) if c.get(name))


def _update(layout: Layout, values: dict[str, Any], key: Any) -> sa.Update:
    """The UPDATE of one row of `layout`'s table (of its tenant only) setting `values`."""
    return sa.update(_table(layout.spec.table, values)).where(layout.scope(layout.pk == key)).values(values)


def _table(name: str, columns: Any) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in dict.fromkeys(columns)))


def is_replay(error: BaseException) -> bool:
    return isinstance(error, _AlreadyAppliedError)


__all__ = ["Version", "Writer", "is_replay"]
