"""The app database's tables as reflected once per start-up: columns, primary keys, one-column unique sets
and the columns indexes lead with, read for all mapped tables together (SQLAlchemy's multi-table
reflection: a few catalog queries on PostgreSQL rather than several per table)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.reflection import ObjectKind
from sqlalchemy.sql.type_api import TypeEngine


@dataclass(frozen=True)
class Reflected:
    """One table (or view) as found in the database."""

    name: str
    types: dict[str, TypeEngine[Any]]
    primary_key: tuple[str, ...]
    #: Columns that are unique on their own (a one-column unique constraint or index).
    unique: frozenset[str] = frozenset()
    #: The first column of each index, unique constraint and the primary key; None for a view (its
    #: indexes are its tables').
    leads: frozenset[str] | None = frozenset()


class Catalog:
    """Tables and views by name, reflected on first use; `load` reflects many in one go."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.inspector = sa.inspect(engine)
        self.tables = set(self.inspector.get_table_names())
        self.views = set(self.inspector.get_view_names())
        self._found: dict[str, Reflected] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.tables or name in self.views

    def load(self, names: Iterable[str]) -> None:
        """Reflect the named tables and views that exist and are not reflected yet, together."""
        wanted = [n for n in dict.fromkeys(names) if n in self and n not in self._found]
        if not wanted:
            return
        inspector = self.inspector
        columns = _by_name(inspector.get_multi_columns(filter_names=wanted, kind=ObjectKind.ANY))
        tables = [n for n in wanted if n in self.tables]
        pks = _by_name(inspector.get_multi_pk_constraint(filter_names=tables)) if tables else {}
        uniques = _by_name(inspector.get_multi_unique_constraints(filter_names=tables)) if tables else {}
        indexes = _by_name(inspector.get_multi_indexes(filter_names=tables)) if tables else {}
        for name in wanted:
            types = {c["name"]: c["type"] for c in columns.get(name, [])}
            if name not in self.tables:
                self._found[name] = Reflected(name, types, (), frozenset(), None)
                continue
            pk = tuple(pks.get(name, {}).get("constrained_columns") or ())
            sets = [list(c["column_names"]) for c in uniques.get(name, [])]
            sets += [list(i["column_names"]) for i in indexes.get(name, []) if i.get("unique")]
            unique = frozenset(str(s[0]) for s in sets if len(s) == 1 and s[0] is not None)
            firsts = [i["column_names"][0] for i in indexes.get(name, []) if i["column_names"]]
            firsts += [c["column_names"][0] for c in uniques.get(name, []) if c["column_names"]]
            leads = frozenset(str(c) for c in firsts + list(pk[:1]) if c is not None)
            self._found[name] = Reflected(name, types, pk, unique, leads)

    def get(self, name: str) -> Reflected | None:
        """The table or view `name`, or None when the database has none of that name."""
        if name not in self:
            return None
        self.load([name])
        return self._found[name]


def _by_name(found: dict[tuple[str | None, str], Any]) -> dict[str, Any]:
    return {name: value for (_, name), value in found.items()}
