"""A small sample book for the in-process loop: what an invoicing app and its QuickBooks company hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.model import EntityType

CUSTOMERS: tuple[Mapping[str, Any], ...] = (
    {
        "display_name": "Amélie O'Brien",
        "given_name": "Amélie",
        "family_name": "O'Brien",
        "email": "amelie@obrien-bakery.example",
        "phone": "(555) 010-2000",
        "billing_address": {
            "lines": ["12 Rue de la Paix"],
            "city": "Montréal",
            "region": "QC",
            "postal_code": "H2X 1Y4",
            "country": "Canada",
        },
    },
    {
        "display_name": "Núñez & Sons Plumbing",
        "company_name": "Núñez & Sons Plumbing LLC",
        "email": "office@nunez-plumbing.example",
        "phone": "555-010-3000",
    },
)
ITEMS: tuple[Mapping[str, Any], ...] = (
    {"name": "Design", "type": "service", "unit_price": "75.00", "taxable": False},
    {"name": "Pipe fitting kit", "type": "non_inventory", "unit_price": "19.99", "taxable": True},
)


def invoice_for(customer_id: str, item_ids: tuple[str, str]) -> dict[str, Any]:
    design, kit = item_ids
    return {
        "customer": {"entity": EntityType.CUSTOMER, "id": customer_id},
        "doc_number": "A-1001",
        "txn_date": "2026-11-02",
        "due_date": "2026-12-02",
        "lines": [
            {
                "item": {"entity": EntityType.ITEM, "id": design},
                "description": "Kitchen layout",
                "quantity": "4",
                "unit_price": "75.00",
                "amount": "300.00",
            },
            {
                "item": {"entity": EntityType.ITEM, "id": kit},
                "quantity": "2",
                "unit_price": "19.99",
                "amount": "39.98",
                "taxable": True,
            },
        ],
    }
