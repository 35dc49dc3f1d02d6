"""What each canonical field holds (text, money, a reference...), to check and convert a mapping."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from engine.model import EntityType


class Kind(StrEnum):
    TEXT = "text"
    BOOL = "bool"
    MONEY = "money"
    DECIMAL = "decimal"
    DATE = "date"
    REF = "ref"


#: Scalar canonical fields of each entity and what they hold. `billing_address` and the child
#: collections (`lines`, `applications`) have their own mapping shapes.
ENTITY_FIELDS: Mapping[EntityType, Mapping[str, Kind]] = {
    EntityType.CUSTOMER: {
        "display_name": Kind.TEXT,
        "given_name": Kind.TEXT,
        "family_name": Kind.TEXT,
        "company_name": Kind.TEXT,
        "email": Kind.TEXT,
        "phone": Kind.TEXT,
        "notes": Kind.TEXT,
        "active": Kind.BOOL,
        "currency": Kind.TEXT,
    },
    EntityType.ITEM: {
        "name": Kind.TEXT,
        "type": Kind.TEXT,
        "description": Kind.TEXT,
        "unit_price": Kind.MONEY,
        "income_account": Kind.TEXT,
        "taxable": Kind.BOOL,
        "active": Kind.BOOL,
    },
    EntityType.INVOICE: {
        "customer": Kind.REF,
        "doc_number": Kind.TEXT,
        "txn_date": Kind.DATE,
        "due_date": Kind.DATE,
        "private_note": Kind.TEXT,
        "tax_code": Kind.TEXT,
        "terms": Kind.TEXT,
        "discount_percent": Kind.DECIMAL,
        "discount": Kind.MONEY,
        "tax_after_discount": Kind.BOOL,
        "shipping": Kind.MONEY,
        "currency": Kind.TEXT,
        "exchange_rate": Kind.DECIMAL,
        "tax_total": Kind.MONEY,
        "total": Kind.MONEY,
        "balance": Kind.MONEY,
        "home_total": Kind.MONEY,
    },
    EntityType.PAYMENT: {
        "customer": Kind.REF,
        "txn_date": Kind.DATE,
        "total": Kind.MONEY,
        "reference_number": Kind.TEXT,
    },
}

#: The collection field of an entity held in a child table, and that child's scalar fields.
CHILD_FIELDS: Mapping[EntityType, tuple[str, Mapping[str, Kind]]] = {
    EntityType.INVOICE: (
        "lines",
        {
            "item": Kind.REF,
            "description": Kind.TEXT,
            "quantity": Kind.DECIMAL,
            "unit_price": Kind.MONEY,
            "amount": Kind.MONEY,
            "taxable": Kind.BOOL,
            "tax_code": Kind.TEXT,
        },
    ),
    EntityType.PAYMENT: ("applications", {"invoice": Kind.REF, "amount": Kind.MONEY}),
}

#: The entity a reference field names.
REF_TARGETS: Mapping[str, EntityType] = {
    "customer": EntityType.CUSTOMER,
    "item": EntityType.ITEM,
    "invoice": EntityType.INVOICE,
}

#: Fields the canonical model cannot do without: a mapping must give them a column.
REQUIRED: Mapping[EntityType, frozenset[str]] = {
    EntityType.CUSTOMER: frozenset({"display_name"}),
    EntityType.ITEM: frozenset({"name"}),
    EntityType.INVOICE: frozenset({"customer"}),
    EntityType.PAYMENT: frozenset({"customer", "total"}),
}
REQUIRED_CHILD: Mapping[EntityType, frozenset[str]] = {
    EntityType.INVOICE: frozenset({"amount"}),
    EntityType.PAYMENT: frozenset({"invoice", "amount"}),
}

ADDRESS_PARTS = ("city", "region", "postal_code", "country")
