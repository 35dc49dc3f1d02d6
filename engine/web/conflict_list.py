"""The conflict list as the console shows it: filtered (entity, field, age, connection) and grouped by
record, each group with its count."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: The age filter's choices: (days, words).
AGES = ((1, "older than a day"), (7, "older than a week"), (30, "older than 30 days"))


@dataclass(frozen=True)
class Filters:
    entity: str = ""
    field: str = ""
    connection: str = ""
    #: Only conflicts opened at least this many days ago (0: any age).
    older_than_days: int = 0
    include_resolved: bool = False

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> Filters:
        try:
            days = max(0, int(params.get("age") or 0))
        except ValueError:
            days = 0
        return cls(
            entity=params.get("entity", ""),
            field=params.get("field", ""),
            connection=params.get("connection", ""),
            older_than_days=days,
            include_resolved=params.get("all") == "1",
        )

    def keep(self, item: Mapping[str, Any], now: datetime) -> bool:
        if self.entity and item["entity"] != self.entity:
            return False
        if self.field and item["field"] != self.field:
            return False
        if self.connection and item["connection"] != self.connection:
            return False
        if self.older_than_days:
            opened = datetime.fromisoformat(item["created_at"])
            if now - opened < timedelta(days=self.older_than_days):
                return False
        return True

    @property
    def active(self) -> bool:
        return bool(self.entity or self.field or self.connection or self.older_than_days)


@dataclass
class Group:
    """The conflicts of one record."""

    link_id: str
    entity: str
    label: str | None
    connection: str
    app_id: str | None
    quickbooks_id: str | None
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open_count(self) -> int:
        return sum(1 for c in self.conflicts if c["status"] == "open")


def grouped(items: Sequence[Mapping[str, Any]]) -> list[Group]:
    """Conflicts grouped by record, records in the order of their oldest conflict."""
    groups: dict[str, Group] = {}
    for item in items:
        group = groups.get(item["link_id"])
        if group is None:
            group = groups[item["link_id"]] = Group(
                link_id=item["link_id"],
                entity=item["entity"],
                label=item.get("label"),
                connection=item["connection"],
                app_id=item.get("app_id"),
                quickbooks_id=item.get("quickbooks_id"),
            )
        group.conflicts.append(dict(item))
    return list(groups.values())


def choices(items: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    return sorted({str(item[key]) for item in items})
