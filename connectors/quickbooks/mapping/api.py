"""The mapping entry points: one function per direction and write kind, dispatching on the entity."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from connectors.quickbooks.mapping import customer, invoice, item, payment
from connectors.quickbooks.mapping.context import MappingContext
from connectors.quickbooks.mapping.values import JsonDict, target, version_of
from engine.errors import RecordRejectedError
from engine.model import (
    QUICKBOOKS_COMPUTED,
    EntityType,
    Version,
    field_names,
    fields_from_json,
    parse_record,
    record_fields,
)

_DEFAULT = MappingContext()


class _EntityMapping(Protocol):
    def __call__(self, fields: Mapping[str, Any], ctx: MappingContext, *, create: bool) -> JsonDict: ...


_TO_CANONICAL: Mapping[EntityType, Callable[[Mapping[str, Any], MappingContext], dict[str, Any]]] = {
    EntityType.CUSTOMER: customer.to_canonical,
    EntityType.ITEM: item.to_canonical,
    EntityType.INVOICE: invoice.to_canonical,
    EntityType.PAYMENT: payment.to_canonical,
}
_TO_QBO: Mapping[EntityType, _EntityMapping] = {
    EntityType.CUSTOMER: customer.to_qbo,
    EntityType.ITEM: item.to_qbo,
    EntityType.INVOICE: invoice.to_qbo,
    EntityType.PAYMENT: payment.to_qbo,
}
#: Name-list entities: QuickBooks cannot delete them, only make them inactive.
NAME_LISTS = frozenset({EntityType.CUSTOMER, EntityType.ITEM})
TRANSACTIONS = frozenset({EntityType.INVOICE, EntityType.PAYMENT})


def to_canonical(
    entity: EntityType, qbo: Mapping[str, Any], ctx: MappingContext | None = None
) -> tuple[dict[str, Any], Version]:
    """A QBO object (as read, written or sent by CDC) as canonical fields and its version.

    Unknown keys are ignored. Raises RecordRejectedError when the object cannot be a canonical record
    (an unsupported item type, a transaction without customer, a missing SyncToken...).
    """
    version = version_of(qbo)
    raw = _TO_CANONICAL[entity](qbo, ctx or _DEFAULT)
    try:
        return record_fields(parse_record(entity, raw)), version
    except ValidationError as exc:
        raise RecordRejectedError(
            f"QuickBooks {entity} {qbo.get('Id')!r} has no canonical form: {_problems(exc)}",
            code="ledgersync.unmappable",
        ) from exc


def to_qbo_create(entity: EntityType, fields: Mapping[str, Any], ctx: MappingContext) -> JsonDict:
    """The body that creates the record; refs in `fields` must carry QuickBooks ids (side quickbooks).

    Raises RecordRejectedError, before anything is sent, when QuickBooks would refuse the record and no
    configured default fills the gap.
    """
    try:
        complete = record_fields(parse_record(entity, fields))
    except ValidationError as exc:
        raise RecordRejectedError(
            f"{entity}: cannot send to QuickBooks: {_problems(exc)}", code="ledgersync.required"
        ) from exc
    return _TO_QBO[entity](_writable(entity, complete), ctx, create=True)


def to_qbo_sparse_update(
    entity: EntityType,
    changed_fields: Mapping[str, Any],
    external_id: str,
    sync_token: int | str,
    ctx: MappingContext,
) -> JsonDict:
    """{"Id", "SyncToken", "sparse": true} plus only the QBO fields the changed canonical fields map to.

    A change to any line (invoice lines, payment applications) sends every line: QuickBooks replaces
    line arrays whole. Computed fields (invoice total and balance) are never sent.
    """
    unknown = set(changed_fields) - set(field_names(entity))
    if unknown:
        raise ValueError(f"not {entity} fields: {sorted(unknown)}")
    try:
        changed = fields_from_json(entity, changed_fields)
    except ValidationError as exc:
        raise ValueError(f"invalid {entity} field values: {exc}") from exc
    body = _TO_QBO[entity](_writable(entity, changed), ctx, create=False)
    return {**target(external_id, sync_token), "sparse": True, **body}


def to_qbo_inactivate(entity: EntityType, external_id: str, sync_token: int | str) -> JsonDict:
    """The sparse update that makes a customer or item inactive (QuickBooks never deletes them)."""
    if entity not in NAME_LISTS:
        raise ValueError(f"QuickBooks cannot inactivate a {entity}; delete or void it")
    return {**target(external_id, sync_token), "sparse": True, "Active": False}


def to_qbo_delete(entity: EntityType, external_id: str, sync_token: int | str) -> JsonDict:
    """The body for POST /{entity}?operation=delete (transactions only)."""
    if entity not in TRANSACTIONS:
        raise ValueError(f"QuickBooks cannot delete a {entity}; inactivate it")
    return target(external_id, sync_token)


def to_qbo_void(entity: EntityType, external_id: str, sync_token: int | str) -> JsonDict:
    """The body for voiding: invoice via ?operation=void, payment via ?operation=update&include=void."""
    if entity is EntityType.INVOICE:
        return target(external_id, sync_token)
    if entity is EntityType.PAYMENT:
        return {**target(external_id, sync_token), "sparse": True}
    raise ValueError(f"QuickBooks cannot void a {entity}; inactivate it")


def _writable(entity: EntityType, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k not in QUICKBOOKS_COMPUTED[entity]}


#: Canonical fields QuickBooks requires, by the element name its own errors use.
_ELEMENTS = {
    "display_name": "DisplayName",
    "name": "Name",
    "customer": "CustomerRef",
    "total": "TotalAmt",
    "amount": "Line.Amount",
}


def _problems(exc: ValidationError) -> str:
    def one(error: Any) -> str:
        path = ".".join(str(part) for part in error["loc"])
        element = _ELEMENTS.get(str(error["loc"][-1])) if error["loc"] else None
        named = f"{path} ({element})" if element else path
        return f"{named}: {error['msg']}"

    return "; ".join(one(error) for error in exc.errors())
