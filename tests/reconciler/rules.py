"""A small, explicit Policy for reconciler tests: every rule spelled out, nothing loaded from YAML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.model import EntityType, Side
from engine.plan import ConflictPolicy, DeleteAction, Direction
from engine.ports import DuplicateNames


@dataclass(frozen=True)
class Rules:
    direction_: Direction = Direction.BOTH
    conflict: ConflictPolicy = ConflictPolicy.NEWEST_WINS
    field_directions: Mapping[str, Direction] = field(default_factory=dict)
    field_conflicts: Mapping[str, ConflictPolicy] = field(default_factory=dict)
    on_delete: DeleteAction | None = None
    fill_empty_: bool = True

    def direction(self, entity: EntityType, name: str) -> Direction:
        return self.field_directions.get(name, self.direction_)

    def conflict_policy(self, entity: EntityType, name: str) -> ConflictPolicy:
        return self.field_conflicts.get(name, self.conflict)

    def fill_empty(self, entity: EntityType, name: str) -> bool:
        return self.fill_empty_

    def delete_action(self, entity: EntityType, target: Side) -> DeleteAction:
        if self.on_delete is not None:
            return self.on_delete
        if target is Side.APP:
            return DeleteAction.DELETE
        if entity in (EntityType.CUSTOMER, EntityType.ITEM):
            return DeleteAction.INACTIVATE
        return DeleteAction.VOID

    def match_keys(self, entity: EntityType) -> tuple[str, ...]:
        return ("email", "display_name") if entity is EntityType.CUSTOMER else ()

    def duplicate_names(self, entity: EntityType) -> DuplicateNames:
        return DuplicateNames.SUFFIX
