"""An entity's mapping bound to its database: the facts reading and writing need, found at start-up."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from connectors.app.catalog import Catalog, Reflected
from connectors.app.fields import CHILD_FIELDS, ENTITY_FIELDS, Kind
from connectors.app.mapping import Child, Column, Entity, Mapping, Tombstone, child_column
from engine.errors import ConfigurationError
from engine.model import EntityType


@dataclass(frozen=True)
class Layout:
    """One mapped entity: its spec, and whether its keys are integers (ids are strings outside)."""

    entity: EntityType
    spec: Entity
    integer_key: bool
    soft_delete_is_time: bool
    tombstone_key_integer: bool
    #: The child table's primary key column (names a bad child row in messages), if it has one.
    child_key: str | None = None
    #: The tenant this connector serves, as the tenant column stores it (None: the mapping has no
    #: tenant column, every row is this connector's).
    tenant: Any = None
    #: Whether the tenant column holds integers (the tenant's name is then a number).
    tenant_integer: bool = False
    #: (table, column) of each yes/no this entity writes (its boolean fields, its child rows', its
    #: soft-delete flag) into an integer column: it is written 1 / 0 (PostgreSQL casts no boolean to one).
    number_flags: frozenset[tuple[str, str]] = frozenset()

    def for_tenant(self, tenant: str | None) -> Layout:
        """This layout for another tenant of the same table (nothing to reflect again)."""
        return replace(self, tenant=tenant_value(self.spec, self.tenant_integer, tenant))

    def scope(self, where: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        """`where`, narrowed to this connector's tenant's rows."""
        column = self.spec.tenant_column
        if column is None:
            return where
        return sa.and_(where, sa.column(column) == self.tenant)

    @property
    def table(self) -> sa.TableClause:
        return sa.table(self.spec.table)

    @property
    def pk(self) -> sa.ColumnClause[Any]:
        return sa.column(self.spec.primary_key)

    def key(self, external_id: str) -> Any:
        """The primary key value for `external_id`; ValueError when it cannot be one."""
        return int(external_id) if self.integer_key else external_id

    def scalar_fields(self) -> tuple[tuple[str, Kind, Column], ...]:
        """(field, kind, column spec) for every mapped scalar field."""
        return self._scalar_fields

    @cached_property
    def _scalar_fields(self) -> tuple[tuple[str, Kind, Column], ...]:
        # Worked out once: every row read and written goes through it (the spec never changes).
        kinds = ENTITY_FIELDS[self.entity]
        found = []
        for name in self.spec.fields:
            column = self.spec.column(name)
            assert column is not None
            found.append((name, kinds[name], column))
        return tuple(found)

    def flag_is_number(self, table: str, column: str) -> bool:
        """Whether `table`.`column`, holding a yes/no, holds it as an integer."""
        return (table, column) in self.number_flags

    @property
    def child(self) -> Child | None:
        return self.spec.child(self.entity)

    def child_fields(self) -> tuple[tuple[str, Kind, Column], ...]:
        return self._child_fields

    @cached_property
    def _child_fields(self) -> tuple[tuple[str, Kind, Column], ...]:
        child = self.child
        if child is None:
            return ()
        kinds = CHILD_FIELDS[self.entity][1]
        found = []
        for name in child.fields:
            column = child_column(child, name)
            assert column is not None
            found.append((name, kinds[name], column))
        return tuple(found)

    @property
    def tombstone(self) -> Tombstone | None:
        return self.spec.delete.tombstone if self.spec.delete else None

    @cached_property
    def soft_delete_column(self) -> str | None:
        return self.spec.delete.soft_delete_column if self.spec.delete else None


def expression(spec: Column, label: str) -> sa.ColumnElement[Any]:
    if spec.column is not None:
        return sa.column(spec.column).label(label)
    assert spec.expression is not None
    return sa.literal_column(f"({spec.expression})").label(label)


def bind(catalog: Catalog, mapping: Mapping, tenant: str | None = None) -> dict[EntityType, Layout]:
    """The layouts of every mapped entity (the mapping is already checked against the database, whose
    tables `catalog` holds), for `tenant` when the mapping names tenant columns (an integer column takes
    the tenant as a number)."""

    def reflected(table: str) -> Reflected:
        found = catalog.get(table)
        assert found is not None, f"table {table!r} was checked to exist"
        return found

    def type_of(table: str, column: str | None) -> Any:
        return None if column is None else reflected(table).types.get(column)

    def single_key(table: str) -> str | None:
        columns = reflected(table).primary_key
        return columns[0] if len(columns) == 1 else None

    layouts = {}
    for entity, spec in mapping.entities.items():
        soft = spec.delete.soft_delete_column if spec.delete else None
        tomb = spec.delete.tombstone if spec.delete else None
        child = spec.child(entity)
        layouts[entity] = Layout(
            entity=entity,
            spec=spec,
            integer_key=isinstance(type_of(spec.table, spec.primary_key), sa.Integer),
            soft_delete_is_time=isinstance(type_of(spec.table, soft), sa.DateTime),
            tombstone_key_integer=tomb is not None
            and isinstance(type_of(tomb.table, tomb.key_column), sa.Integer),
            child_key=single_key(child.table) if child is not None else None,
            tenant_integer=isinstance(type_of(spec.table, spec.tenant_column), sa.Integer),
            number_flags=frozenset(
                (table, column)
                for table, column in _flag_columns(entity, spec)
                if isinstance(type_of(table, column), sa.Integer)
            ),
        )
    return {entity: layout.for_tenant(tenant) for entity, layout in layouts.items()}


def _flag_columns(entity: EntityType, spec: Entity) -> list[tuple[str, str]]:
    """(table, column) of every yes/no `spec` writes: boolean fields, of its own and of its child rows,
    and the soft-delete flag."""
    found = [
        (spec.table, column.column)
        for name, kind in ENTITY_FIELDS[entity].items()
        if kind is Kind.BOOL and (column := spec.column(name)) is not None and column.column is not None
    ]
    child = spec.child(entity)
    if child is not None and entity in CHILD_FIELDS:
        found += [
            (child.table, column.column)
            for name, kind in CHILD_FIELDS[entity][1].items()
            if kind is Kind.BOOL
            and (column := child_column(child, name)) is not None
            and column.column is not None
        ]
    soft = spec.delete.soft_delete_column if spec.delete else None
    return found + ([(spec.table, soft)] if soft else [])


def tenant_value(spec: Entity, integer: bool, tenant: str | None) -> Any:
    """The tenant as `spec`'s tenant column stores it; ConfigurationError when it cannot be one."""
    if spec.tenant_column is None:
        return None
    if tenant is None:
        raise ConfigurationError(
            f"the mapping scopes {spec.table} by {spec.tenant_column}: a connection needs a tenant"
        )
    if integer:
        try:
            return int(tenant)
        except ValueError:
            raise ConfigurationError(
                f"tenant {tenant!r} is not a number, as {spec.table}.{spec.tenant_column} needs"
            ) from None
    return tenant
