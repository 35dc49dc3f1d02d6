"""The shape of a policy file: pydantic models that reject anything they do not know.

    version: 1
    entities:
      customer:   {direction, conflict, fields, match_keys, fill_empty_on_match, duplicate_names, on_delete}
      item:       {direction, conflict, fields, match_keys, fill_empty_on_match, duplicate_names, on_delete}
      invoice:    {direction, conflict, fields, match_keys, fill_empty_on_match, on_delete}
      payment:    {direction, conflict, fields, match_keys, fill_empty_on_match, on_delete}

Every key is required here; the loader lays the user's file over the shipped default first, so a
file may leave out any entity or key. Choice errors carry their own message ("expected one of ...;
got ..."), which the loader prints as is. Rules that relate a key to its value (fields QuickBooks
computes) live in `policies.rules`, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from engine.configfile import describe
from engine.model import EntityType, field_names
from engine.plan import ConflictPolicy, DeleteAction, Direction
from engine.ports import DuplicateNames


def _one_of(choices: Iterable[str], why: str = "") -> Callable[[Any], Any]:
    allowed = tuple(choices)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in allowed:
            return value
        raise PydanticCustomError(
            "choice",
            "{why}expected one of {expected}; got {got}",
            {"why": why, "expected": ", ".join(allowed), "got": describe(value)},
        )

    return check


ENTITY_DIRECTIONS = (Direction.BOTH, Direction.APP_TO_QUICKBOOKS, Direction.QUICKBOOKS_TO_APP)
#: QuickBooks never deletes customers or items (they are made inactive); transactions are deleted or voided.
QUICKBOOKS_DELETES: dict[EntityType, tuple[DeleteAction, ...]] = {
    EntityType.CUSTOMER: (DeleteAction.INACTIVATE, DeleteAction.IGNORE),
    EntityType.ITEM: (DeleteAction.INACTIVATE, DeleteAction.IGNORE),
    EntityType.INVOICE: (DeleteAction.DELETE, DeleteAction.VOID, DeleteAction.IGNORE),
    EntityType.PAYMENT: (DeleteAction.DELETE, DeleteAction.VOID, DeleteAction.IGNORE),
}


def _values(members: Iterable[StrEnum]) -> list[str]:
    return [m.value for m in members]


def _fields_of(entity: EntityType) -> Callable[[Any], Any]:
    return _one_of(field_names(entity), f"unknown {entity} field; ")


def _deletes_of(entity: EntityType) -> Callable[[Any], Any]:
    why = "" if DeleteAction.DELETE in QUICKBOOKS_DELETES[entity] else _NEVER_DELETED.format(entity=entity)
    return _one_of(_values(QUICKBOOKS_DELETES[entity]), why)


_NEVER_DELETED = "QuickBooks never deletes a {entity}, it makes it inactive; "


EntityDirection = Annotated[Direction, BeforeValidator(_one_of(_values(ENTITY_DIRECTIONS)))]
FieldDirection = Annotated[Direction, BeforeValidator(_one_of(_values(Direction)))]
Conflict = Annotated[ConflictPolicy, BeforeValidator(_one_of(_values(ConflictPolicy)))]
DuplicateNamesChoice = Annotated[DuplicateNames, BeforeValidator(_one_of(_values(DuplicateNames)))]

CustomerField = Annotated[str, BeforeValidator(_fields_of(EntityType.CUSTOMER))]
ItemField = Annotated[str, BeforeValidator(_fields_of(EntityType.ITEM))]
InvoiceField = Annotated[str, BeforeValidator(_fields_of(EntityType.INVOICE))]
PaymentField = Annotated[str, BeforeValidator(_fields_of(EntityType.PAYMENT))]
CustomerDelete = Annotated[DeleteAction, BeforeValidator(_deletes_of(EntityType.CUSTOMER))]
ItemDelete = Annotated[DeleteAction, BeforeValidator(_deletes_of(EntityType.ITEM))]
InvoiceDelete = Annotated[DeleteAction, BeforeValidator(_deletes_of(EntityType.INVOICE))]
PaymentDelete = Annotated[DeleteAction, BeforeValidator(_deletes_of(EntityType.PAYMENT))]


class Strict(BaseModel):
    """Frozen, and an unknown key is an error, never silently ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    #: What an unknown key is called in an error message.
    key_kind: ClassVar[str] = "key"


class FieldPolicy(Strict):
    """Per-field overrides; an unset value falls back to the entity's."""

    direction: FieldDirection | None = None
    conflict: Conflict | None = None
    fill_empty_on_match: bool | None = None


class EntityPolicy(Strict):
    entity: ClassVar[EntityType]
    direction: EntityDirection
    conflict: Conflict
    fields: dict[str, FieldPolicy]
    #: Canonical fields that identify one record on both sides, for linking records that exist on both.
    match_keys: tuple[str, ...]
    #: On a first match (two records linked with no base yet), a field empty on one side and set on
    #: the other is filled from the side that has it instead of going to the conflict policy.
    fill_empty_on_match: bool
    #: What a delete in the app becomes in QuickBooks.
    on_delete: DeleteAction


class NamedEntityPolicy(EntityPolicy):
    """Customers and items: QuickBooks wants their names unique, so a clash needs a rule."""

    duplicate_names: DuplicateNamesChoice


class CustomerPolicy(NamedEntityPolicy):
    entity: ClassVar[EntityType] = EntityType.CUSTOMER
    fields: dict[CustomerField, FieldPolicy]
    match_keys: tuple[CustomerField, ...]
    on_delete: CustomerDelete


class ItemPolicy(NamedEntityPolicy):
    entity: ClassVar[EntityType] = EntityType.ITEM
    fields: dict[ItemField, FieldPolicy]
    match_keys: tuple[ItemField, ...]
    on_delete: ItemDelete


class InvoicePolicy(EntityPolicy):
    entity: ClassVar[EntityType] = EntityType.INVOICE
    fields: dict[InvoiceField, FieldPolicy]
    match_keys: tuple[InvoiceField, ...]
    on_delete: InvoiceDelete


class PaymentPolicy(EntityPolicy):
    entity: ClassVar[EntityType] = EntityType.PAYMENT
    fields: dict[PaymentField, FieldPolicy]
    match_keys: tuple[PaymentField, ...]
    on_delete: PaymentDelete


class Entities(Strict):
    key_kind: ClassVar[str] = "entity"
    customer: CustomerPolicy
    item: ItemPolicy
    invoice: InvoicePolicy
    payment: PaymentPolicy

    def of(self, entity: EntityType) -> EntityPolicy:
        policy: EntityPolicy = getattr(self, entity.value)
        return policy


class PolicyDocument(Strict):
    #: The file format's version; a later format comes with a migration from this one.
    version: Literal[1] = Field(description="`version: 1` (the policy format version) at the top")
    entities: Entities
