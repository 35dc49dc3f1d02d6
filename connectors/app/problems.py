"""What is wrong with one app row, said the way its owner can fix it: table, row, column, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from connectors.app.codec import shown
from connectors.app.fields import CHILD_FIELDS
from connectors.app.layout import Layout
from connectors.app.mapping import Column


@dataclass(frozen=True)
class Place:
    """One row of one table (`key` is None for a child table without a primary key: `index` says which)."""

    table: str
    key: Any
    index: int | None = None
    parent: str | None = None

    def __str__(self) -> str:
        if self.key is None and self.index is not None:
            return f"line {self.index + 1} of {self.parent} in {self.table}"
        key = self.key if isinstance(self.key, int) else repr(self.key)
        return f"row {key} of {self.table}"


def problem(place: Place, column: str | Column | None, why: str) -> str:
    """`row 7 of invoice_lines, column amount: 'abc' is not a number`."""
    if isinstance(column, Column):
        column = column.column if column.column is not None else None
        where = "column " + column if column else "the mapped expression"
    else:
        where = f"column {column}" if column else ""
    return f"{place}, {where}: {why}" if where else f"{place}: {why}"


def validation_problems(
    layout: Layout, place: Place, children: Sequence[Place], error: ValidationError
) -> list[str]:
    """Pydantic's complaints about a decoded record, each put back on the table and column it came from."""
    found = []
    for detail in error.errors():
        loc = detail["loc"]
        head = str(loc[0]) if loc else ""
        if layout.entity in CHILD_FIELDS and head == CHILD_FIELDS[layout.entity][0] and len(loc) >= 3:
            index, name = int(loc[1]), str(loc[2])
            child = layout.child
            spec = child.fields.get(name) if child is not None else None
            at = children[index] if index < len(children) else place
            column: str | Column | None = Column(column=spec) if isinstance(spec, str) else spec
            found.append(problem(at, column, _why(detail, name, CHILD_FIELDS[layout.entity][0][:-1])))
            continue
        if head == "billing_address":
            found.append(problem(place, None, f"the billing address: {_why(detail, 'address', 'customer')}"))
            continue
        found.append(problem(place, layout.spec.column(head), _why(detail, head, layout.entity.value)))
    return found


def _why(detail: ErrorDetails, field: str, owner: str) -> str:
    label = field.replace("_", " ")
    kind = detail["type"]
    if kind == "missing":
        return f"is empty (NULL), but every {owner} needs a {label}: fill it in"
    if kind == "string_too_short":
        return f"{shown(detail['input'])} is empty, but every {owner} needs a {label}: fill it in"
    message = detail["msg"]
    return f"{shown(detail['input'])} is not a valid {label} ({message[:1].lower()}{message[1:]})"
