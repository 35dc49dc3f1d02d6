"""`PolicySet`: a validated policy file answering the engine's `Policy` questions, field by field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.model import QUICKBOOKS_COMPUTED, EntityType, Side, field_names
from engine.plan import ConflictPolicy, DeleteAction, Direction
from engine.ports import DuplicateNames, Policy
from policies.schema import FieldPolicy, NamedEntityPolicy, PolicyDocument

_NO_OVERRIDE = FieldPolicy()


class PolicySet:
    """Implements `engine.ports.Policy`. A field's own setting wins; otherwise its entity's applies.

    Fields QuickBooks computes (invoice total and balance) flow to the app unless the file says `none`.
    """

    def __init__(self, document: PolicyDocument, source: str = "<memory>") -> None:
        self._document = document
        self.source = source
        # Each field's direction, worked out once: the reconciler asks for every field of every record
        # it decides, and the document is immutable.
        self._directions: dict[tuple[EntityType, str], Direction] = {}

    @property
    def document(self) -> PolicyDocument:
        """The validated file (read-only: the answers worked out from it are kept)."""
        return self._document

    @classmethod
    def default(cls) -> PolicySet:
        """The policy shipped in `policies/default.yaml`."""
        from policies.loader import default_source, default_text, parse_policy

        return parse_policy(default_text(), default_source())

    def _field(self, entity: EntityType, field: str) -> FieldPolicy:
        """The field's own overrides (every one None when the file sets none)."""
        return self.document.entities.of(entity).fields.get(_known(entity, field)) or _NO_OVERRIDE

    def direction(self, entity: EntityType, field: str) -> Direction:
        found = self._directions.get((entity, field))
        if found is None:
            found = self._directions[(entity, field)] = self._direction(entity, field)
        return found

    def _direction(self, entity: EntityType, field: str) -> Direction:
        override = self._field(entity, field).direction
        if override is not None:
            return override
        if field in QUICKBOOKS_COMPUTED[entity]:
            return Direction.QUICKBOOKS_TO_APP
        return self.document.entities.of(entity).direction

    def conflict_policy(self, entity: EntityType, field: str) -> ConflictPolicy:
        override = self._field(entity, field).conflict
        return self.document.entities.of(entity).conflict if override is None else override

    def fill_empty(self, entity: EntityType, field: str) -> bool:
        """Whether a first match fills a field empty on one side from the other (no conflict)."""
        override = self._field(entity, field).fill_empty_on_match
        return self.document.entities.of(entity).fill_empty_on_match if override is None else override

    def delete_action(self, entity: EntityType, target: Side) -> DeleteAction:
        """What a delete on the other side becomes on `target`.

        Nothing is deleted on a side the entity does not sync into. In QuickBooks it is the file's
        `on_delete`; in the app a propagated delete is a delete, unless `on_delete` is `ignore`.
        """
        settings = self.document.entities.of(entity)
        if settings.on_delete is DeleteAction.IGNORE or not settings.direction.writes_to(target):
            return DeleteAction.IGNORE
        return settings.on_delete if target is Side.QUICKBOOKS else DeleteAction.DELETE

    def match_keys(self, entity: EntityType) -> tuple[str, ...]:
        return tuple(self.document.entities.of(entity).match_keys)

    def duplicate_names(self, entity: EntityType) -> DuplicateNames:
        """Only customer and item names must be unique in QuickBooks; anything else gets `manual`."""
        settings = self.document.entities.of(entity)
        if isinstance(settings, NamedEntityPolicy):
            return settings.duplicate_names
        return DuplicateNames.MANUAL

    def effective(self) -> dict[str, Any]:
        """The fully resolved policy as plain data: every entity, every field.

        A field's `conflict` is None unless it flows both ways, since only then can a conflict arise.
        `duplicate_names` is None for entities whose names QuickBooks does not require to be unique.
        """
        return {
            "source": self.source,
            "version": self.document.version,
            "entities": {entity.value: self._effective_entity(entity) for entity in EntityType},
        }

    def _effective_entity(self, entity: EntityType) -> dict[str, Any]:
        settings = self.document.entities.of(entity)
        fields: dict[str, Any] = {}
        for name in field_names(entity):
            direction = self.direction(entity, name)
            conflict = self.conflict_policy(entity, name) if direction is Direction.BOTH else None
            fields[name] = {
                "direction": direction.value,
                "conflict": conflict and conflict.value,
                "fill_empty_on_match": self.fill_empty(entity, name) if direction is Direction.BOTH else None,
            }
        named = isinstance(settings, NamedEntityPolicy)
        return {
            "direction": settings.direction.value,
            "conflict": settings.conflict.value,
            "match_keys": list(self.match_keys(entity)),
            "fill_empty_on_match": settings.fill_empty_on_match,
            "duplicate_names": self.duplicate_names(entity).value if named else None,
            "on_delete": {side.value: self.delete_action(entity, side).value for side in Side},
            "fields": fields,
        }


def _known(entity: EntityType, field: str) -> str:
    if field not in field_names(entity):
        raise ValueError(f"{entity} has no field {field!r}; its fields are {', '.join(field_names(entity))}")
    return field


if TYPE_CHECKING:
    # mypy proves here that PolicySet implements the engine's Policy port.
    _conforms: type[Policy] = PolicySet
