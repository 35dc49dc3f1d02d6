"""More of the web tests' world: conflicts of several kinds on several records, and parked changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from engine.model import EntityType, Ref, Side
from tests.support.sample import CUSTOMERS
from tests.web.conftest import World

C, P = EntityType.CUSTOMER, EntityType.PAYMENT


def quickbooks_id(world: World, entity: EntityType, app_id: str) -> str | None:
    with world.loop.store.session() as s:
        link = s.find_link("default", entity, Side.APP, app_id)
    return link.quickbooks_id if link else None


def several_conflicts(world: World) -> dict[str, str]:
    """Five more conflicts beside the e-mail one: three customers' phones, and a payment's amount and
    date (six conflicts on five records). Returns QuickBooks' phone by app id (what keeping QuickBooks'
    value leads to)."""
    loop = world.loop
    ids = [
        loop.app.create(C, {"display_name": f"Harbor Café {n}", "phone": f"555-010-100{n}"}) for n in range(3)
    ]
    payment = loop.app.create(
        P, {"customer": Ref(entity=C, id=ids[0]), "total": Decimal("120.00"), "txn_date": date(2026, 11, 1)}
    )
    loop.runner.run_until_quiet()
    phones = {}
    for n, app_id in enumerate(ids):
        loop.app.edit(C, app_id, phone=f"555-020-200{n}")
        phones[app_id] = f"555-030-300{n}"
        loop.quickbooks.edit(C, str(quickbooks_id(world, C, app_id)), phone=phones[app_id])
    loop.app.edit(P, payment, total=Decimal("125.00"), txn_date=date(2026, 11, 3))
    qbo_payment = str(quickbooks_id(world, P, payment))
    loop.quickbooks.edit(P, qbo_payment, total=Decimal("1130.00"), txn_date=date(2026, 11, 4))
    loop.runner.run_until_quiet()
    return phones


@dataclass(frozen=True)
class Parked:
    notes: str
    retry_qbo_id: str
    skip_qbo_id: str


def park_two_ops(world: World) -> Parked:
    """Two customers' notes that QuickBooks refuses (until the test says otherwise): two parked ops."""
    loop = world.loop
    notes = "Deliver to the back door"
    first = loop.app.create(C, dict(CUSTOMERS[1]))
    second = loop.app.create(C, {"display_name": "Birch & Pine Joinery"})
    loop.runner.run_until_quiet()
    loop.quickbooks.reject_when(lambda op: op.fields.get("notes") == notes)
    loop.app.edit(C, first, notes=notes)
    loop.app.edit(C, second, notes=notes)
    loop.runner.run_until_quiet()
    return Parked(notes, str(quickbooks_id(world, C, first)), str(quickbooks_id(world, C, second)))
