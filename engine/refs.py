"""Translating references between a side's external ids and link ids (pure; the lookups are passed in)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from engine.model import EntityType, Side

#: (entity, external id on a side) -> link id, or None when not linked yet.
LinkOf = Callable[[EntityType, str], str | None]
#: (entity, link id) -> external id on a side, or None when that side has no record yet.
IdOf = Callable[[EntityType, str], str | None]


#: Values that hold no ref, tested first: most field values are these, and an isinstance check against
#: the Mapping ABC (which a plain value fails only after the ABC machinery has looked) costs several
#: times more. _walk ran for every field of every record decided, twice.
_PLAIN = (str, int, float, Decimal, date, type(None))
_REF_KEYS = frozenset({"entity", "id", "side"})


def _walk(value: Any, convert: Callable[[Mapping[str, Any]], dict[str, Any]]) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict | Mapping):
        if "entity" in value and "id" in value and value.keys() <= _REF_KEYS:
            return convert(value)
        return {k: _walk(v, convert) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return tuple(_walk(v, convert) for v in value)
    return value


def refs_in(fields: Mapping[str, Any]) -> list[tuple[EntityType, str]]:
    """The (entity, id) of every ref in `fields`, as the side emitted them (for a lookup in bulk)."""
    found: list[tuple[EntityType, str]] = []

    def note(ref: Mapping[str, Any]) -> dict[str, Any]:
        found.append((EntityType(ref["entity"]), str(ref["id"])))
        return dict(ref)

    for value in fields.values():
        if not isinstance(value, _PLAIN):
            _walk(value, note)
    return found


def to_links(fields: Mapping[str, Any], side: Side, link_of: LinkOf) -> dict[str, Any]:
    """Refs a side emitted (its own ids) become link refs where linked; the rest stay side refs."""

    def convert(ref: Mapping[str, Any]) -> dict[str, Any]:
        # Connectors emit refs in their own ids, whether or not they set `side`.
        entity = EntityType(ref["entity"])
        link = link_of(entity, str(ref["id"]))
        if link is None:
            return {"entity": entity, "id": str(ref["id"]), "side": side}
        return {"entity": entity, "id": link, "side": None}

    return {k: v if isinstance(v, _PLAIN) else _walk(v, convert) for k, v in fields.items()}


class UnlinkedReferenceError(LookupError):
    """A link ref has no record on the target side yet."""

    def __init__(self, entity: EntityType, link_id: str, side: Side) -> None:
        super().__init__(f"{entity} link {link_id} has no record in {side} yet")
        self.entity = entity
        self.link_id = link_id


def to_side(fields: Mapping[str, Any], side: Side, id_of: IdOf) -> dict[str, Any]:
    """Link refs become `side`'s external ids, for a write to that side."""

    def convert(ref: Mapping[str, Any]) -> dict[str, Any]:
        entity = EntityType(ref["entity"])
        if ref.get("side") is not None:
            if Side(ref["side"]) is side:
                return dict(ref)
            raise UnlinkedReferenceError(entity, str(ref["id"]), side)
        external = id_of(entity, str(ref["id"]))
        if external is None:
            raise UnlinkedReferenceError(entity, str(ref["id"]), side)
        return {"entity": entity, "id": external, "side": side}

    return {k: v if isinstance(v, _PLAIN) else _walk(v, convert) for k, v in fields.items()}
