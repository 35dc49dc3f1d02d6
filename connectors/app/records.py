"""Reading mapped rows (and their child rows) into canonical records with their version stamps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from connectors.app.codec import Codec, micros
from connectors.app.fields import ADDRESS_PARTS, CHILD_FIELDS
from connectors.app.layout import Layout, expression
from engine.model import Version, parse_record, record_fields


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


class Reader:
    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def columns(self, layout: Layout) -> list[sa.ColumnElement[Any]]:
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
    ) -> list[Stored]:
        query = sa.select(*self.columns(layout)).select_from(layout.table).where(where).order_by(*order_by)
        if limit is not None:
            query = query.limit(limit)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        rows = [row._mapping for row in conn.execute(query)]
        kids = self.children(conn, layout, [row["_pk"] for row in rows if not self._deleted(row)])
        return [self._stored(layout, row, kids.get(row["_pk"], []), now) for row in rows]

    def children(
        self, conn: sa.Connection, layout: Layout, keys: list[Any]
    ) -> dict[Any, list[dict[str, Any]]]:
        """Child rows (as canonical dicts) per parent key, in their order."""
        child = layout.child
        if child is None or not keys:
            return {}
        parent: sa.ColumnClause[Any] = sa.column(child.parent_key)
        fields = layout.child_fields()
        columns = [parent.label("_parent"), *(expression(c, f"f_{name}") for name, _, c in fields)]
        order = [parent] + ([sa.column(child.order_by)] if child.order_by else [])
        query = (
            sa.select(*columns).select_from(sa.table(child.table)).where(parent.in_(keys)).order_by(*order)
        )
        found: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for row in conn.execute(query):
            values = {
                name: self.codec.read(kind, row._mapping[f"f_{name}"], name) for name, kind, _ in fields
            }
            found[row._mapping["_parent"]].append({k: v for k, v in values.items() if v is not None})
        return found

    def version(self, layout: Layout, row: Any, now: datetime) -> tuple[Version, int]:
        """The row's version stamp, and the value it is polled by."""
        updated = self.codec.timestamp(row.get("_updated_at"))
        version = row.get("_version")
        seq = int(version or 0) if layout.spec.version_column else (micros(updated) if updated else 0)
        poll = seq if layout.spec.poll_by == "version" else (micros(updated) if updated else 0)
        return Version(seq=seq, at=updated or now), poll

    def _deleted(self, row: Any) -> bool:
        return "_deleted" in row and self.codec.is_set(row["_deleted"])

    def _stored(self, layout: Layout, row: Any, kids: list[dict[str, Any]], now: datetime) -> Stored:
        version, poll = self.version(layout, row, now)
        external_id = str(row["_pk"])
        if self._deleted(row):
            return Stored(external_id, version, poll, deleted=True, fields={})
        fields: dict[str, Any] = {}
        for name, kind, _ in layout.scalar_fields():
            value = self.codec.read(kind, row[f"f_{name}"], name)
            if value is not None:
                fields[name] = value
        address = self._address(layout, row)
        if address is not None:
            fields["billing_address"] = address
        if layout.entity in CHILD_FIELDS and layout.child is not None:
            fields[CHILD_FIELDS[layout.entity][0]] = kids
        try:
            canonical = record_fields(parse_record(layout.entity, fields))
        except ValidationError as error:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            return Stored(external_id, version, poll, deleted=False, fields={}, invalid=reason)
        return Stored(external_id, version, poll, deleted=False, fields=canonical)

    def _address(self, layout: Layout, row: Any) -> dict[str, Any] | None:
        spec = layout.spec.billing_address
        if spec is None:
            return None
        lines = [str(v) for i in range(len(spec.lines)) if (v := row[f"a_line_{i}"])]
        parts = {p: str(row[f"a_{p}"]) for p in ADDRESS_PARTS if getattr(spec, p) and row[f"a_{p}"]}
        return {"lines": lines, **parts} if lines or parts else None
