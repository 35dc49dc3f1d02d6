"""The canonical model: the records both sides are translated into, and the change events that carry them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

CENT = Decimal("0.01")


def _cents(value: Decimal) -> Decimal:
    try:
        cents = value.quantize(CENT)
    except InvalidOperation:  # more digits than the context holds: a slip, not an amount
        raise ValueError(f"money must be an amount in cents, got {value}") from None
    if value != cents:
        raise ValueError(f"money must have at most 2 decimal places, got {value}")
    return cents


#: Money: a Decimal with exact cents (never a float).
Money = Annotated[Decimal, AfterValidator(_cents)]


class Side(StrEnum):
    APP = "app"
    QUICKBOOKS = "quickbooks"

    @property
    def other(self) -> Side:
        return Side.QUICKBOOKS if self is Side.APP else Side.APP


class EntityType(StrEnum):
    CUSTOMER = "customer"
    ITEM = "item"
    INVOICE = "invoice"
    PAYMENT = "payment"


class Operation(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


class Origin(StrEnum):
    """Who made a change: a person (or the app itself), or ledgersync's own write coming back."""

    USER = "user"
    LEDGERSYNC = "ledgersync"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Ref(Frozen):
    """A reference to another record, by link, never by name.

    `side` is None when `id` is a link id (the same on both sides); otherwise `id` is the external id on
    `side` and the reference is not yet linked (so anything that needs it waits).
    """

    entity: EntityType
    id: str
    side: Side | None = None

    @property
    def resolved(self) -> bool:
        return self.side is None


class Address(Frozen):
    lines: tuple[str, ...] = ()
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Customer(Frozen):
    display_name: str = Field(min_length=1)
    given_name: str | None = None
    family_name: str | None = None
    company_name: str | None = None
    email: str | None = None
    phone: str | None = None
    billing_address: Address | None = None
    notes: str | None = None
    active: bool = True
    #: ISO currency code, set once in QuickBooks; None means the company's home currency.
    currency: str | None = None


class ItemType(StrEnum):
    SERVICE = "service"
    NON_INVENTORY = "non_inventory"


class Item(Frozen):
    name: str = Field(min_length=1)
    type: ItemType = ItemType.SERVICE
    description: str | None = None
    unit_price: Money | None = None
    #: The QuickBooks income account id; the app usually leaves it to config.
    income_account: str | None = None
    taxable: bool = False
    active: bool = True


class InvoiceLine(Frozen):
    item: Ref | None = None
    description: str | None = None
    quantity: Decimal = Decimal(1)
    unit_price: Money | None = None
    amount: Money
    taxable: bool = False
    #: The line's tax code when `taxable` does not say it: a QuickBooks TaxCode id other than the
    #: company's default taxable / non-taxable code (a reduced VAT rate...). None: per `taxable`.
    tax_code: str | None = None


class Invoice(Frozen):
    customer: Ref
    doc_number: str | None = None
    txn_date: date | None = None
    due_date: date | None = None
    lines: tuple[InvoiceLine, ...] = ()
    private_note: str | None = None
    #: The invoice's tax rate group (US `TxnTaxDetail.TxnTaxCodeRef`); QuickBooks picks it itself under
    #: Automated Sales Tax, and then it is neither read nor sent.
    tax_code: str | None = None
    #: Payment terms (a QuickBooks Term id); QuickBooks computes the due date from them when none is given.
    terms: str | None = None
    #: A discount on the item subtotal: a percent, or (when no percent) an amount.
    discount_percent: Decimal | None = None
    discount: Money | None = None
    #: Whether tax is charged on the discounted amounts (None: the company's default).
    tax_after_discount: bool | None = None
    shipping: Money | None = None
    #: ISO currency code; None means the company's home currency (and no exchange rate).
    currency: str | None = None
    #: Home-currency units per unit of `currency`.
    exchange_rate: Decimal | None = None
    #: Computed by QuickBooks; they flow to the app only.
    tax_total: Money | None = None
    total: Money | None = None
    balance: Money | None = None
    home_total: Money | None = None


class PaymentApplication(Frozen):
    invoice: Ref
    amount: Money


class Payment(Frozen):
    customer: Ref
    txn_date: date | None = None
    total: Money
    reference_number: str | None = None
    applications: tuple[PaymentApplication, ...] = ()


Record = Customer | Item | Invoice | Payment

MODELS: Mapping[EntityType, type[Record]] = {
    EntityType.CUSTOMER: Customer,
    EntityType.ITEM: Item,
    EntityType.INVOICE: Invoice,
    EntityType.PAYMENT: Payment,
}

#: Fields only QuickBooks computes: never written to QuickBooks, they flow to the app only.
QUICKBOOKS_COMPUTED: Mapping[EntityType, frozenset[str]] = {
    EntityType.CUSTOMER: frozenset(),
    EntityType.ITEM: frozenset(),
    EntityType.INVOICE: frozenset({"tax_total", "total", "balance", "home_total"}),
    EntityType.PAYMENT: frozenset(),
}

#: Fields a QuickBooks write must carry together: an invoice's item lines, discount and shipping are all
#: lines of one Line array, which QuickBooks replaces whole even in a sparse update.
WRITTEN_TOGETHER: Mapping[EntityType, frozenset[str]] = {
    EntityType.INVOICE: frozenset({"lines", "discount", "discount_percent", "shipping"}),
}

#: Entities a record of this type may reference; the reconciler waits for them to be linked first.
DEPENDS_ON: Mapping[EntityType, tuple[EntityType, ...]] = {
    EntityType.CUSTOMER: (),
    EntityType.ITEM: (),
    EntityType.INVOICE: (EntityType.CUSTOMER, EntityType.ITEM),
    EntityType.PAYMENT: (EntityType.CUSTOMER, EntityType.INVOICE),
}


def field_names(entity: EntityType) -> tuple[str, ...]:
    return tuple(MODELS[entity].model_fields)


def parse_record(entity: EntityType, data: Mapping[str, Any]) -> Record:
    """Validate canonical field values (python or JSON form) into the entity's model."""
    return MODELS[entity].model_validate(dict(data))


def record_fields(record: Record) -> dict[str, Any]:
    """The record as a dict of canonical field values (python types: Decimal, date, nested dicts)."""
    return record.model_dump()


@cache
def _field_adapter(entity: EntityType, name: str) -> TypeAdapter[Any]:
    annotation: Any = MODELS[entity].model_fields[name].annotation
    return TypeAdapter(annotation)


#: Per annotation, the types of the values that are the same in python and JSON form and that its
#: validation leaves as they are (with no constraint in the field's metadata).
_PLAIN_ANNOTATIONS: dict[Any, tuple[type, ...]] = {
    str: (str,),
    str | None: (str, type(None)),
    bool: (bool,),
    bool | None: (bool, type(None)),
}


@cache
def _plain_fields(entity: EntityType) -> dict[str, tuple[type, ...]]:
    """The fields of `entity` whose values of the given types need neither validating nor converting."""
    return {
        name: _PLAIN_ANNOTATIONS[info.annotation]
        for name, info in MODELS[entity].model_fields.items()
        if info.annotation in _PLAIN_ANNOTATIONS and not info.metadata
    }


def fields_to_json(entity: EntityType, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical field values (possibly a subset) in JSON form, for storage."""
    result = {}
    plain = _plain_fields(entity)
    for key, value in fields.items():
        if type(value) in plain.get(key, ()):
            result[key] = value  # what the adapter would give back: most fields are these
            continue
        adapter = _field_adapter(entity, key)
        result[key] = adapter.dump_python(adapter.validate_python(value), mode="json")
    return result


def fields_from_json(entity: EntityType, data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `fields_to_json`: python-form values, shaped as `record_fields` shapes them."""
    result = {}
    plain = _plain_fields(entity)
    for key, value in data.items():
        if type(value) in plain.get(key, ()):
            result[key] = value
            continue
        parsed = _field_adapter(entity, key).validate_python(value)
        result[key] = parsed.model_dump() if isinstance(parsed, BaseModel) else _dump_nested(parsed)
    return result


def _dump_nested(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_dump_nested(v) for v in value)
    return value.model_dump() if isinstance(value, BaseModel) else value


class Version(Frozen):
    """A version stamp: `seq` orders versions of one record on one side; `at` is when it changed there.

    QuickBooks: seq = SyncToken, at = MetaData.LastUpdatedTime. The app: its version column, or the
    `updated_at` in microseconds since the epoch when it has no version column.
    """

    seq: int
    at: AwareDatetime

    def __str__(self) -> str:
        return str(self.seq)


class ChangeEvent(Frozen):
    """One observed change of one record on one side, normalized to canonical fields."""

    side: Side
    connection: str
    entity: EntityType
    external_id: str
    version: Version
    observed_at: AwareDatetime
    operation: Operation = Operation.UPSERT
    #: Canonical field values (python form); empty for a delete.
    fields: dict[str, Any] = Field(default_factory=dict)
    origin: Origin = Origin.USER

    @model_validator(mode="after")
    def _fields_match_entity(self) -> ChangeEvent:
        if self.operation is Operation.UPSERT:
            # Round-trip through the model so every event carries complete, valid, canonical values.
            canonical = record_fields(parse_record(self.entity, self.fields))
            object.__setattr__(self, "fields", canonical)
        elif self.fields:
            raise ValueError("a delete event carries no fields")
        return self

    @property
    def record(self) -> Record | None:
        return parse_record(self.entity, self.fields) if self.operation is Operation.UPSERT else None

    @property
    def key(self) -> tuple[str, Side, EntityType, str, int]:
        return (self.connection, self.side, self.entity, self.external_id, self.version.seq)
