"""Reading mapped rows (and their child rows) into canonical records with their version stamps.

Decoding is per record: a value that cannot be read marks only its own record invalid (with what to
fix, by table, row and column); the rest of the page reads on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from connectors.app.codec import BadValueError, Codec, micros
from connectors.app.fields import ADDRESS_PARTS, CHILD_FIELDS, REF_TARGETS, Kind
from connectors.app.layout import Layout, expression
from connectors.app.problems import Place, problem, validation_problems
from engine.model import EntityType, Version, parse_record, record_fields


@dataclass(frozen=True)
class Stored:
    """One row as the connector sees it: canonical fields, version, and the value it is polled by."""

    external_id: str
    version: Version
    poll_key: int
    deleted: bool
    fields: dict[str, Any]
    #: Why the row is not a valid canonical record (then `fields` is empty), else None.
    invalid: str | None = None
    #: The poll column's value as stored, when it is not a readable version or time (`poll_key` is 0).
    raw_key: Any = None
    #: The journal holds this version (or a later one) already: placed for the cursor, not decoded.
    journaled: bool = False


#: ids of one entity -> each id's highest version already journaled (`engine.ports.Journaled`, its
#: entity bound).
JournaledIds = Callable[[Collection[str]], Mapping[str, int]]


@dataclass(frozen=True)
class ChildRow:
    """One child row (an invoice line, a payment application): its canonical values, or its problems."""

    place: Place
    values: dict[str, Any]
    problems: tuple[str, ...] = ()


class Reader:
    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        #: Per entity, whether its table is keyed by integers (a reference to it must be one).
        self.integer_keys: dict[EntityType, bool] = {}
        self._columns: dict[int, tuple[Layout, list[sa.ColumnElement[Any]]]] = {}

    def columns(self, layout: Layout) -> list[sa.ColumnElement[Any]]:
        """The labelled columns a record is read by (built once per layout)."""
        cached = self._columns.get(id(layout))
        if cached is not None and cached[0] is layout:
            return cached[1]
        found = self._build_columns(layout)
        self._columns[id(layout)] = (layout, found)
        return found

    def _build_columns(self, layout: Layout) -> list[sa.ColumnElement[Any]]:
        spec = layout.spec
        found: list[sa.ColumnElement[Any]] = [layout.pk.label("_pk")]
        for label, column in (
            ("_version", spec.version_column),
            ("_updated_at", spec.updated_at_column),
            ("_deleted", layout.soft_delete_column),
        ):
            if column is not None:
                found.append(sa.column(column).label(label))
        found += [expression(column, f"f_{name}") for name, _, column in layout.scalar_fields()]
        address = spec.billing_address
        if address is not None:
            found += [sa.column(c).label(f"a_line_{i}") for i, c in enumerate(address.lines)]
            found += [sa.column(c).label(f"a_{p}") for p in ADDRESS_PARTS if (c := getattr(address, p))]
        return found

    def select(
        self,
        conn: sa.Connection,
        layout: Layout,
        where: sa.ColumnElement[bool],
        now: datetime,
        *,
        order_by: Sequence[sa.ColumnElement[Any]] = (),
        limit: int | None = None,
        lock: bool = False,
        known: Collection[tuple[str, int]] = (),
        journaled: JournaledIds | None = None,
    ) -> list[Stored]:
        """The rows `where` selects, decoded; a row whose (id, version) is `known` (handed over already:
        a read's overlap brings it again) keeps its place, id, version and poll key, but is not decoded
        and its children are not read (fields empty). So is a row whose version is at or below the
        one `journaled` gives for its id (one call for the rows), flagged `journaled`: our own
        write's echo, whose result was journaled when it was written."""
        query = (
            sa.select(*self.columns(layout))
            .select_from(layout.table)
            .where(layout.scope(where))
            .order_by(*order_by)
        )
        if limit is not None:
            query = query.limit(limit)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        rows = [row._mapping for row in conn.execute(query)]
        # Each row's version is worked out once: to tell a known one, and to stamp one decoded.
        stamps = [self._stamp(layout, row, now) for row in rows]
        placed: dict[Any, Stored] = {}
        if known:
            for row, stamp in zip(rows, stamps, strict=True):
                if not isinstance(stamp, BadValueError) and (str(row["_pk"]), stamp[0].seq) in known:
                    version, poll = stamp
                    placed[row["_pk"]] = Stored(
                        str(row["_pk"]), version, poll, deleted=self._deleted(layout, row), fields={}
                    )
        if journaled is not None:
            self._place_journaled(layout, rows, stamps, placed, journaled)
        kids = self.children(
            conn,
            layout,
            [row["_pk"] for row in rows if not self._deleted(layout, row) and row["_pk"] not in placed],
        )
        return [
            known_row
            if (known_row := placed.get(row["_pk"])) is not None
            else self._stored(layout, row, kids.get(row["_pk"], []), now, stamp)
            for row, stamp in zip(rows, stamps, strict=True)
        ]

    def _place_journaled(
        self,
        layout: Layout,
        rows: Sequence[Any],
        stamps: Sequence[tuple[Version, int] | BadValueError],
        placed: dict[Any, Stored],
        journaled: JournaledIds,
    ) -> None:
        fresh = [
            (row, stamp)
            for row, stamp in zip(rows, stamps, strict=True)
            if not isinstance(stamp, BadValueError) and row["_pk"] not in placed
        ]
        if not fresh:
            return
        newest = journaled([str(row["_pk"]) for row, _ in fresh])
        for row, (version, poll) in fresh:
            top = newest.get(str(row["_pk"]))
            if top is not None and version.seq <= top:
                deleted = self._deleted(layout, row)
                placed[row["_pk"]] = Stored(str(row["_pk"]), version, poll, deleted, {}, journaled=True)

    def _stamp(self, layout: Layout, row: Any, now: datetime) -> tuple[Version, int] | BadValueError:
        """`version`, or the error that kept the row from being placed in time."""
        try:
            return self.version(layout, row, now)
        except BadValueError as error:
            return error

    def children(self, conn: sa.Connection, layout: Layout, keys: list[Any]) -> dict[Any, list[ChildRow]]:
        """Child rows per parent key, in their order; a value that cannot be read is a problem of its row."""
        child = layout.child
        if child is None or not keys:
            return {}
        parent: sa.ColumnClause[Any] = sa.column(child.parent_key)
        fields = layout.child_fields()
        columns = [parent.label("_parent"), *(expression(c, f"f_{name}") for name, _, c in fields)]
        if layout.child_key is not None:
            columns.append(sa.column(layout.child_key).label("_key"))
        order = [parent] + ([sa.column(child.order_by)] if child.order_by else [])
        query = (
            sa.select(*columns).select_from(sa.table(child.table)).where(parent.in_(keys)).order_by(*order)
        )
        found: dict[Any, list[ChildRow]] = defaultdict(list)
        for row in conn.execute(query):
            mapped = row._mapping
            siblings = found[mapped["_parent"]]
            place = Place(
                child.table,
                mapped.get("_key"),
                index=len(siblings),
                parent=f"{layout.entity} {mapped['_parent']}",
            )
            values, problems = self._decode(place, [(n, k, c, mapped[f"f_{n}"]) for n, k, c in fields])
            siblings.append(ChildRow(place, values, tuple(problems)))
        return found

    def version(self, layout: Layout, row: Any, now: datetime) -> tuple[Version, int]:
        """The row's version stamp, and the value it is polled by; BadValueError naming the column."""
        spec = layout.spec
        try:
            updated = self.codec.timestamp(row.get("_updated_at"))
        except BadValueError as error:
            raise BadValueError(f"column {spec.updated_at_column}: {error}") from None
        try:
            seq = self.codec.sequence(row.get("_version") or 0) if spec.version_column else None
        except BadValueError as error:
            raise BadValueError(f"column {spec.version_column}: {error}") from None
        if seq is None:
            seq = micros(updated) if updated else 0
        poll = seq if spec.poll_by == "version" else (micros(updated) if updated else 0)
        return Version(seq=seq, at=updated or now), poll

    def _deleted(self, layout: Layout, row: Any) -> bool:
        return layout.soft_delete_column is not None and self.codec.is_set(row["_deleted"])

    def _stored(
        self,
        layout: Layout,
        row: Any,
        kids: list[ChildRow],
        now: datetime,
        stamp: tuple[Version, int] | BadValueError,
    ) -> Stored:
        place = Place(layout.spec.table, row["_pk"])
        external_id = str(row["_pk"])
        if isinstance(stamp, BadValueError):
            # The row cannot be placed in time: park it, and let the cursor step over it by its raw value.
            raw = row.get("_version" if layout.spec.poll_by == "version" else "_updated_at")
            return Stored(
                external_id, Version(seq=0, at=now), 0, False, {}, invalid=f"{place}, {stamp}", raw_key=raw
            )
        version, poll = stamp
        if self._deleted(layout, row):
            return Stored(external_id, version, poll, deleted=True, fields={})
        scalars = [(n, k, c, row[f"f_{n}"]) for n, k, c in layout.scalar_fields()]
        fields, problems = self._decode(place, scalars)
        address, address_problems = self._address(layout, place, row)
        problems += address_problems
        if address is not None:
            fields["billing_address"] = address
        if layout.entity in CHILD_FIELDS and layout.child is not None:
            fields[CHILD_FIELDS[layout.entity][0]] = [kid.values for kid in kids]
            problems += [p for kid in kids for p in kid.problems]
        if problems:
            return Stored(external_id, version, poll, deleted=False, fields={}, invalid="; ".join(problems))
        try:
            canonical = record_fields(parse_record(layout.entity, fields))
        except ValidationError as error:
            reason = "; ".join(validation_problems(layout, place, [kid.place for kid in kids], error))
            return Stored(external_id, version, poll, deleted=False, fields={}, invalid=reason)
        return Stored(external_id, version, poll, deleted=False, fields=canonical)

    def _decode(
        self, place: Place, values: list[tuple[str, Any, Any, Any]]
    ) -> tuple[dict[str, Any], list[str]]:
        """(field, kind, column spec, stored value) -> the canonical values that are set, and the problems."""
        decoded: dict[str, Any] = {}
        problems: list[str] = []
        for name, kind, column, stored in values:
            target = REF_TARGETS.get(name) if kind is Kind.REF else None
            integer = target is not None and self.integer_keys.get(target, False)
            try:
                value = self.codec.read(kind, stored, name, integer_ref=integer)
            except BadValueError as error:
                problems.append(problem(place, column, str(error)))
                continue
            if value is not None:
                decoded[name] = value
        return decoded, problems

    def _address(self, layout: Layout, place: Place, row: Any) -> tuple[dict[str, Any] | None, list[str]]:
        spec = layout.spec.billing_address
        if spec is None:
            return None, []
        problems: list[str] = []

        def text(label: str, column: str) -> str | None:
            try:
                return self.codec.text(row[label]) if row[label] else None
            except BadValueError as error:
                problems.append(problem(place, column, str(error)))
                return None

        lines = [v for i, c in enumerate(spec.lines) if (v := text(f"a_line_{i}", c))]
        parts = {p: v for p in ADDRESS_PARTS if (c := getattr(spec, p)) and (v := text(f"a_{p}", c))}
        return ({"lines": lines, **parts} if lines or parts else None), problems
