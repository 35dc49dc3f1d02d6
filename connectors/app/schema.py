"""Start-up check of a mapping against the real database (SQLAlchemy reflection), and the tables it binds."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.sql.type_api import TypeEngine

from connectors.app.catalog import Catalog, Reflected
from connectors.app.fields import CHILD_FIELDS, ENTITY_FIELDS, REF_TARGETS, Kind
from connectors.app.mapping import Child, Column, Entity, Mapping, Tombstone, child_column
from engine.errors import ConfigurationError
from engine.model import EntityType

log = logging.getLogger(__name__)

#: Column types that can hold each kind of field (NullType: a SQLite column declared without a type).
#: A rate or a quantity may be floating point (read back through its shortest decimal form); money may
#: not (`Checker.column`). Float is named apart from Numeric: SQLAlchemy 2.1 no longer derives one from
#: the other.
_ACCEPTS: dict[Kind | str, tuple[type[TypeEngine[Any]], ...]] = {
    Kind.TEXT: (sa.String,),
    Kind.BOOL: (sa.Boolean, sa.Integer),
    Kind.MONEY: (sa.Numeric,),
    Kind.DECIMAL: (sa.Numeric, sa.Float),
    Kind.DATE: (sa.Date, sa.DateTime),
    "version": (sa.Integer,),
    "timestamp": (sa.DateTime,),
    "soft_delete": (sa.Boolean, sa.Integer, sa.DateTime),
}


class Checker:
    """Collects every problem of a mapping against the database, each naming its mapping key path."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.engine = catalog.engine
        self.problems: list[str] = []
        #: What works but will be slow (logged as warnings, never refused), by key path.
        self.advisories: list[str] = []

    def table(self, at: str, name: str) -> Reflected | None:
        found = self.catalog.get(name)
        if found is None:
            self.problems.append(f"{at}: table {name!r} not found")
        return found

    def column(self, at: str, table: Reflected, name: str | None, kind: Kind | str | None = None) -> None:
        if name is None:
            return
        if name not in table.types:
            self.problems.append(f"{at}: column {name!r} not found in table {table.name!r}")
            return
        column_type = table.types[name]
        accepted = _ACCEPTS.get(kind) if kind is not None else None
        if accepted is None or isinstance(column_type, sa.types.NullType):
            return
        if not isinstance(column_type, accepted) or (
            kind is Kind.MONEY and isinstance(column_type, sa.Float)
        ):
            self.problems.append(
                f"{at}: column {name!r} of table {table.name!r} is {column_type}, which cannot hold {kind}"
            )

    def expression(self, at: str, table: Reflected, expression: str) -> None:
        probe: sa.Select[Any] = (
            sa.select(sa.literal_column(f"({expression})"))
            .select_from(sa.table(table.name))
            .where(sa.false())
        )
        try:
            with self.engine.connect() as conn:
                conn.execute(probe)
        except exc.DBAPIError as error:
            first = str(error.orig).strip().splitlines()[0]
            self.problems.append(f"{at}: the expression does not run on table {table.name!r}: {first}")

    def field(self, at: str, table: Reflected, spec: Column, kind: Kind) -> None:
        if spec.expression is not None:
            self.expression(at, table, spec.expression)
        else:
            self.column(at, table, spec.column, kind)

    def leads_an_index(self, table: str, column: str) -> bool:
        """Whether `column` is the first column of an index (or of the primary key) of `table`."""
        found = self.catalog.get(table)
        # A view's indexes are its tables': nothing to advise there.
        return found is None or found.leads is None or column in found.leads

    def fail_if_any(self, mapping: Mapping) -> None:
        for advice in self.advisories:
            log.warning("%s", self._located(mapping, advice))
        if self.problems:
            lines = [self._located(mapping, problem) for problem in self.problems]
            count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
            raise ConfigurationError(
                f"the mapping does not match the app database ({count}):\n" + "\n".join(lines)
            )

    @staticmethod
    def _located(mapping: Mapping, problem: str) -> str:
        where = mapping.where(problem.partition(": ")[0])
        return f"{where}: {problem}" if where else problem


def check(catalog: Catalog, mapping: Mapping, *, outbox: bool = True) -> None:
    """ConfigurationError listing every mismatch between `mapping` and the database, by key path (and by
    file:line:col when the mapping was read from a file).

    `outbox=False` leaves out the outbox table (install-triggers is about to create it).
    """
    catalog.load(mapped_tables(mapping))
    checker = Checker(catalog)
    tables = {
        entity: checker.table(f"entities.{entity}.table", spec.table)
        for entity, spec in mapping.entities.items()
    }
    for entity, spec in mapping.entities.items():
        table = tables[entity]
        if table is not None:
            _check_entity(checker, entity, spec, table, mapping, tables)
    if outbox and any(spec.capture.mode == "outbox" for spec in mapping.entities.values()):
        found = checker.table("outbox_table", mapping.outbox_table)
        for column in ("id", "entity", "record_id", "operation", "seq", "txid", "changed_at"):
            if found is not None:
                checker.column("outbox_table", found, column)
    checker.fail_if_any(mapping)


def _check_entity(
    checker: Checker,
    entity: EntityType,
    spec: Entity,
    table: Reflected,
    mapping: Mapping,
    tables: dict[EntityType, Reflected | None],
) -> None:
    at = f"entities.{entity}"
    checker.column(f"{at}.primary_key", table, spec.primary_key)
    if spec.primary_key in table.types and table.primary_key and table.primary_key != (spec.primary_key,):
        checker.problems.append(
            f"{at}.primary_key: table {table.name!r} has primary key {list(table.primary_key)},"
            f" not {spec.primary_key!r}"
        )
    checker.column(f"{at}.version_column", table, spec.version_column, "version")
    checker.column(f"{at}.updated_at_column", table, spec.updated_at_column, "timestamp")
    checker.column(f"{at}.origin_column", table, spec.origin_column, Kind.TEXT)
    checker.column(f"{at}.tenant_column", table, spec.tenant_column)
    tenant = spec.tenant_column
    if tenant in table.types and tenant is not None and not checker.leads_an_index(table.name, tenant):
        # Each tenant's poll reads its own rows since its cursor: led by the tenant, an index serves it.
        poll = spec.updated_at_column if spec.poll_by == "updated_at" else spec.version_column
        checker.advisories.append(
            f"{at}.tenant_column: no index of {table.name!r} starts with {tenant!r}, so each tenant's"
            f" poll reads past every other tenant's changes; create one, e.g. CREATE INDEX"
            f" {table.name}_{tenant} ON {table.name} ({tenant}, {poll}, {spec.primary_key})"
        )
    kinds = ENTITY_FIELDS[entity]
    for name, _ in spec.fields.items():
        column = spec.column(name)
        assert column is not None
        if kinds.get(name) is Kind.REF:
            _check_ref(checker, f"{at}.fields.{name}", table, column, REF_TARGETS[name], mapping, tables)
        elif name in kinds:
            checker.field(f"{at}.fields.{name}", table, column, kinds[name])
    if spec.billing_address is not None:
        address = spec.billing_address
        for i, line in enumerate(address.lines):
            checker.column(f"{at}.billing_address.lines.{i}", table, line, Kind.TEXT)
        for part in ("city", "region", "postal_code", "country"):
            checker.column(f"{at}.billing_address.{part}", table, getattr(address, part), Kind.TEXT)
    child = spec.child(entity)
    if child is not None:
        _check_child(checker, entity, f"{at}.{CHILD_FIELDS[entity][0]}", child, mapping, tables)
    if spec.delete is not None:
        checker.column(
            f"{at}.delete.soft_delete_column", table, spec.delete.soft_delete_column, "soft_delete"
        )
        if spec.delete.tombstone is not None:
            _check_tombstone(checker, f"{at}.delete.tombstone", spec.delete.tombstone)


def _check_child(
    checker: Checker,
    entity: EntityType,
    at: str,
    child: Child,
    mapping: Mapping,
    tables: dict[EntityType, Reflected | None],
) -> None:
    table = checker.table(f"{at}.table", child.table)
    if table is None:
        return
    checker.column(f"{at}.parent_key", table, child.parent_key)
    if child.parent_key in table.types and not checker.leads_an_index(table.name, child.parent_key):
        # Each page of parents reads its children by parent key: without an index every page scans
        # the whole child table, so reading N parents costs N x the table (a 100k backfill: minutes).
        checker.advisories.append(
            f"{at}.parent_key: no index of {child.table!r} starts with {child.parent_key!r}, so every"
            f" page read scans the whole table; create one, e.g. CREATE INDEX"
            f" {child.table}_{child.parent_key} ON {child.table} ({child.parent_key})"
        )
    checker.column(f"{at}.order_by", table, child.order_by)
    _check_order_by(checker, at, child, table)
    kinds = CHILD_FIELDS[entity][1]
    for name, spec in child.fields.items():
        column = Column(column=spec) if isinstance(spec, str) else spec
        if kinds.get(name) is Kind.REF:
            _check_ref(checker, f"{at}.fields.{name}", table, column, REF_TARGETS[name], mapping, tables)
        elif name in kinds:
            checker.field(f"{at}.fields.{name}", table, column, kinds[name])


def _check_order_by(checker: Checker, at: str, child: Child, table: Reflected) -> None:
    """ledgersync writes each child's position (1, 2, 3...) into `order_by`: a column of its own."""
    column = child.order_by
    if column is None or column not in table.types:
        return
    why = "ledgersync writes each line's position (1, 2, 3...) into it"
    fix = "give a position column of its own (or leave order_by out)"
    if column in table.primary_key or column in table.unique:
        what = "the primary key" if column in table.primary_key else "unique"
        checker.problems.append(
            f"{at}.order_by: column {column!r} of table {table.name!r} is {what}, but {why},"
            f" so the lines of any two records would collide on it; {fix}"
        )
    elif column == child.parent_key:
        checker.problems.append(f"{at}.order_by: column {column!r} is the parent_key too, but {why}; {fix}")
    else:
        taken = [name for name in child.fields if (c := child_column(child, name)) and c.column == column]
        if taken:
            checker.problems.append(
                f"{at}.order_by: column {column!r} also holds the field {taken[0]}, but {why}; {fix}"
            )


def _check_ref(
    checker: Checker,
    at: str,
    table: Reflected,
    column: Column,
    target: EntityType,
    mapping: Mapping,
    tables: dict[EntityType, Reflected | None],
) -> None:
    if column.column is None:
        checker.problems.append(f"{at}: a reference needs a column (it is written back)")
        return
    checker.column(at, table, column.column)
    target_table = tables.get(target)
    if target not in mapping.entities:
        checker.problems.append(f"{at}: references {target}, which the mapping does not map")
        return
    target_pk = mapping.entities[target].primary_key
    if target_table is None or column.column not in table.types or target_pk not in target_table.types:
        return
    if _is_integer(table.types[column.column]) != _is_integer(target_table.types[target_pk]):
        checker.problems.append(
            f"{at}: column {column.column!r} is {table.types[column.column]}, but {target} ids"
            f" ({target_table.name}.{target_pk}) are {target_table.types[target_pk]}"
        )


def _check_tombstone(checker: Checker, at: str, tomb: Tombstone) -> None:
    table = checker.table(f"{at}.table", tomb.table)
    if table is None:
        return
    checker.column(f"{at}.key_column", table, tomb.key_column)
    checker.column(f"{at}.version_column", table, tomb.version_column, "version")
    checker.column(f"{at}.deleted_at_column", table, tomb.deleted_at_column, "timestamp")
    checker.column(f"{at}.entity_column", table, tomb.entity_column, Kind.TEXT)
    checker.column(f"{at}.tenant_column", table, tomb.tenant_column)


def _is_integer(column_type: TypeEngine[Any]) -> bool:
    return isinstance(column_type, sa.Integer)


def mapped_tables(mapping: Mapping) -> list[str]:
    """Every table the mapping names: entities', their child rows', tombstones' and the outbox."""
    names = [mapping.outbox_table]
    for entity, spec in mapping.entities.items():
        names.append(spec.table)
        child = spec.child(entity)
        if child is not None:
            names.append(child.table)
        if spec.delete is not None and spec.delete.tombstone is not None:
            names.append(spec.delete.tombstone.table)
    return names
