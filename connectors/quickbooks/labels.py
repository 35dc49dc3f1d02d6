"""How QuickBooks Online names things to its users: its own field labels, and where its pages are, so the
review console speaks the words an accountant sees in QuickBooks."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.quickbooks.settings import PRODUCTION, SANDBOX
from engine.model import EntityType

#: QuickBooks' labels for our canonical fields, by entity (as its forms show them).
LABELS: Mapping[str, Mapping[str, str]] = {
    EntityType.CUSTOMER.value: {
        "display_name": "Customer display name",
        "given_name": "First name",
        "family_name": "Last name",
        "company_name": "Company name",
        "email": "Email",
        "phone": "Phone number",
        "billing_address": "Billing address",
        "notes": "Notes",
        "active": "Active",
        "currency": "Currency",
    },
    EntityType.ITEM.value: {
        "name": "Name",
        "type": "Item type",
        "description": "Description",
        "unit_price": "Sales price/rate",
        "income_account": "Income account",
        "taxable": "Is taxable",
        "active": "Active",
    },
    EntityType.INVOICE.value: {
        "customer": "Customer",
        "doc_number": "Invoice no.",
        "txn_date": "Invoice date",
        "due_date": "Due date",
        "lines": "Product/service lines",
        "private_note": "Message on statement",
        "tax_code": "Sales tax rate",
        "terms": "Terms",
        "discount_percent": "Discount percent",
        "discount": "Discount",
        "tax_after_discount": "Apply tax after discount",
        "shipping": "Shipping",
        "currency": "Currency",
        "exchange_rate": "Exchange rate",
        "tax_total": "Sales tax",
        "total": "Total",
        "balance": "Balance due",
        "home_total": "Total in home currency",
    },
    EntityType.PAYMENT.value: {
        "customer": "Customer",
        "txn_date": "Payment date",
        "total": "Amount received",
        "reference_number": "Reference no.",
        "applications": "Outstanding transactions",
    },
}

_HOSTS = {PRODUCTION: "https://app.qbo.intuit.com", SANDBOX: "https://app.sandbox.qbo.intuit.com"}
_PAGES = {
    EntityType.CUSTOMER: "/app/customerdetail?nameId={id}",
    EntityType.ITEM: "/app/item?itemId={id}",
    EntityType.INVOICE: "/app/invoice?txnId={id}",
    EntityType.PAYMENT: "/app/recvpayment?txnId={id}",
}


def record_page(environment: str, entity: EntityType, external_id: str) -> str | None:
    """The record's page in QuickBooks Online (None for the emulator, which has no pages)."""
    host = _HOSTS.get(environment)
    return None if host is None else host + _PAGES[entity].format(id=external_id)
