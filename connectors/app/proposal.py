"""`ledgersync init`: a mapping proposed from the tables a database has (best-effort name matching)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import yaml

from connectors.app.fields import CHILD_FIELDS, ENTITY_FIELDS
from engine.model import EntityType

TABLE_NAMES: dict[EntityType, tuple[str, ...]] = {
    EntityType.CUSTOMER: ("customers", "customer", "clients", "client", "contacts"),
    EntityType.ITEM: ("items", "item", "products", "product", "services"),
    EntityType.INVOICE: ("invoices", "invoice", "bills"),
    EntityType.PAYMENT: ("payments", "payment", "receipts"),
}
CHILD_NAMES: dict[EntityType, tuple[str, ...]] = {
    EntityType.INVOICE: ("invoice_lines", "invoice_items", "line_items", "lines"),
    EntityType.PAYMENT: ("payment_applications", "payment_allocations", "allocations"),
}
#: Column names tried for each canonical field, best first.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "display_name": ("display_name", "name", "full_name"),
    "given_name": ("given_name", "first_name", "firstname"),
    "family_name": ("family_name", "last_name", "lastname", "surname"),
    "company_name": ("company_name", "company", "organisation", "organization"),
    "email": ("email", "email_address", "mail"),
    "phone": ("phone", "phone_number", "telephone", "tel"),
    "notes": ("notes", "note", "comments"),
    "active": ("active", "is_active", "enabled"),
    "name": ("name", "title", "sku"),
    "type": ("type", "kind", "item_type"),
    "description": ("description", "details"),
    "unit_price": ("unit_price", "price", "rate"),
    "taxable": ("taxable", "is_taxable"),
    "customer": ("customer_id", "client_id", "contact_id"),
    "item": ("item_id", "product_id"),
    "invoice": ("invoice_id",),
    "doc_number": ("doc_number", "number", "invoice_number", "reference"),
    "txn_date": ("txn_date", "date", "issued_on", "issue_date", "received_on", "paid_on"),
    "due_date": ("due_date", "due_on"),
    "private_note": ("private_note", "memo", "notes"),
    "total": ("total", "amount", "total_amount"),
    "balance": ("balance", "amount_due"),
    "reference_number": ("reference_number", "reference", "ref"),
    "quantity": ("quantity", "qty"),
    "amount": ("amount", "line_total", "total"),
}
VERSION = ("version", "lock_version", "row_version")
UPDATED_AT = ("updated_at", "modified_at", "last_modified", "updated")
SOFT_DELETE = ("deleted_at", "deleted", "is_deleted", "archived_at")
PARENT_KEYS = {EntityType.INVOICE: ("invoice_id",), EntityType.PAYMENT: ("payment_id",)}
ORDER = ("position", "line_number", "sort_order", "seq")


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def propose(engine: sa.Engine) -> dict[str, Any]:
    """A mapping (as data) for the tables found; fields it could not match are left out for the user."""
    inspector = sa.inspect(engine)
    tables = inspector.get_table_names()
    entities: dict[str, Any] = {}
    for entity, names in TABLE_NAMES.items():
        table = _pick(tables, names)
        if table is None:
            continue
        columns = [c["name"] for c in inspector.get_columns(table)]
        pk = inspector.get_pk_constraint(table).get("constrained_columns") or ["id"]
        spec: dict[str, Any] = {"table": table, "primary_key": pk[0]}
        for key, names_ in (("version_column", VERSION), ("updated_at_column", UPDATED_AT)):
            if found := _pick(columns, names_):
                spec[key] = found
        spec["fields"] = _fields(columns, ENTITY_FIELDS[entity])
        child_table = _pick(tables, CHILD_NAMES.get(entity, ()))
        if child_table is not None:
            child_columns = [c["name"] for c in inspector.get_columns(child_table)]
            collection, kinds = CHILD_FIELDS[entity]
            child: dict[str, Any] = {
                "table": child_table,
                "parent_key": _pick(child_columns, PARENT_KEYS[entity]) or "CHANGE_ME",
                "fields": _fields(child_columns, kinds),
            }
            if order := _pick(child_columns, ORDER):
                child["order_by"] = order
            spec[collection] = child
        if soft := _pick(columns, SOFT_DELETE):
            spec["delete"] = {"soft_delete_column": soft}
        entities[entity.value] = spec
    return {"version": 1, "origin_value": "ledgersync", "entities": entities}


def _fields(columns: list[str], kinds: Any) -> dict[str, str]:
    return {name: found for name in kinds if (found := _pick(columns, SYNONYMS.get(name, (name,))))}


def proposal_yaml(engine: sa.Engine) -> str:
    header = (
        "# A mapping proposed by `ledgersync init` from the tables it found: check every line.\n"
        "# Format and options: docs/app-connector.md. Fields left out are not synced from the app.\n"
    )
    return header + yaml.safe_dump(propose(engine), sort_keys=False, allow_unicode=True)
