"""What the users do during a runtime test: the app's staff create and edit customers and invoices,
the accountant edits customers in QuickBooks; every value written is remembered, to check that none
is lost.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.model import EntityType, Side
from examples.invoicing.actions import add_customer, add_invoice
from examples.invoicing.edit import edit_record
from tests.integration.harness import Copies, World, same

C, INV = EntityType.CUSTOMER, EntityType.INVOICE

#: Canonical field -> (the app's column, the QuickBooks body that sets it).
APP_COLUMNS = {"notes": "notes", "email": "email", "phone": "phone", "company_name": "company"}


def quickbooks_body(name: str, value: str) -> dict[str, Any]:
    bodies: dict[str, dict[str, Any]] = {
        "notes": {"Notes": value},
        "phone": {"PrimaryPhone": {"FreeFormNumber": value}},
        "company_name": {"CompanyName": value},
    }
    return bodies[name]


@dataclass(frozen=True)
class Sizes:
    customers: int  # app creates
    invoices: int  # app creates, each for a new customer
    app_edits: int
    quickbooks_edits: int

    @property
    def app_changes(self) -> int:
        return self.customers + self.invoices + self.app_edits


@dataclass
class Written:
    """The last value each side's users wrote to each (customer app id, field)."""

    last: dict[tuple[str, str], dict[Side, str]] = field(default_factory=dict)

    def note(self, app_id: str, name: str, side: Side, value: str) -> None:
        self.last.setdefault((app_id, name), {})[side] = value


def create(world: World, sizes: Sizes, rng: random.Random) -> list[int]:
    """The app's staff add customers, and invoices for some of them; returns the new customers' ids."""
    customers = []
    for n in range(sizes.customers):
        customers.append(
            add_customer(
                world.app_url,
                display_name=f"Client {n:04d} Ødegård-{rng.randrange(10**6):06d}",
                first_name="Åsa",
                last_name=f"O'Neil {n}",
                email=f"client{n}@example.com",
                phone=f"555-010-{n:04d}",
                city="Québec",
            )
        )
    for n in range(sizes.invoices):
        add_invoice(
            world.app_url,
            customers[n % len(customers)],
            f"R-{n:05d}",
            issued_on=date(2026, 3, 1 + n % 28),
            lines=[
                {"item_id": 1, "description": "Design", "quantity": 1 + n % 3, "unit_price": "75.00"},
                {"item_id": 2, "quantity": 2, "unit_price": "19.99", "taxable": True},
            ],
        )
    return customers


def edit(world: World, sizes: Sizes, customers: list[int], rng: random.Random) -> Written:
    """App edits and QuickBooks edits, interleaved at random, as fast as they can be made.

    App staff edit notes, e-mail and company; the accountant edits phone, notes and company in
    QuickBooks, so some fields are edited on both sides at once: `notes` and `company_name` follow
    newest_wins, `phone` of a few records is edited on both sides and, being `manual`, may open a
    conflict.
    """
    written = Written()
    linked = world.links(C)
    steps = [Side.APP] * sizes.app_edits + [Side.QUICKBOOKS] * sizes.quickbooks_edits
    rng.shuffle(steps)
    contested = customers[:10]
    for n, side in enumerate(steps):
        customer = rng.choice(contested if n % 7 == 0 else customers)
        app_id = str(customer)
        if side is Side.APP:
            name = rng.choice(
                ["notes", "email", "company_name"] + (["phone"] if customer in contested else [])
            )
            value = f"app {n}" if name != "email" else f"app{n}@example.com"
            if name == "phone":
                value = f"555-020-{n:04d}"
            edit_record(world.app_url, "customer", customer, {APP_COLUMNS[name]: value})
        else:
            name = rng.choice(["phone", "notes", "company_name"])
            value = f"555-030-{n:04d}" if name == "phone" else f"qbo {n}"
            world.qbo.edit_record("Customer", linked[app_id], quickbooks_body(name, value))
        written.note(app_id, name, side, value)
        if n % 50 == 0:
            world.processes.check_alive()
    return written


def lost_updates(world: World, written: Written, copies: list[Copies]) -> list[str]:
    """Every edited field holds its last value on both sides (the newer one where both sides edited
    it), or is in an open conflict that shows the value; `copies`: both sides, read once quiet."""
    conflicts = world.open_conflicts()
    fetched = {str(c.link.app_id): (c.app, c.quickbooks) for c in copies if c.link.entity is C}
    problems = []
    for (app_id, name), by_side in sorted(written.last.items()):
        if app_id not in fetched:
            problems.append(f"customer {app_id}: not linked on both sides")
            continue
        app, qbo = fetched[app_id]
        candidates = list(by_side.values())
        if (app_id, name) in conflicts:
            shown = conflicts[(app_id, name)]
            if not any(same(name, value, c) for value in shown for c in candidates):
                problems.append(f"customer {app_id}.{name}: conflict {shown} shows none of {candidates}")
            continue
        if not same(name, app.get(name), qbo.get(name)):
            problems.append(
                f"customer {app_id}.{name}: app {app.get(name)!r} != QuickBooks {qbo.get(name)!r}"
            )
        elif not any(same(name, app.get(name), c) for c in candidates):
            problems.append(f"customer {app_id}.{name}: {app.get(name)!r} is none of the last {candidates}")
    return problems


def assert_converged(world: World, sizes: Sizes, written: Written) -> None:
    """Converged, no duplicate, no lost update."""
    copies = world.copies()
    differing = world.differing(copies)
    assert differing == {}, f"linked records whose fields differ: {differing}"
    customers, invoices = world.app_count("customers"), world.app_count("invoices")
    assert customers == 3 + sizes.customers and invoices == 2 + sizes.invoices
    assert world.quickbooks_count("Customer") == customers == len(world.links(C))
    assert world.quickbooks_count("Invoice") == invoices == len(world.links(INV))
    problems = lost_updates(world, written, copies)
    assert problems == [], problems


def play(world: World, sizes: Sizes, *, quiet_timeout: float = 120, seed: int = 6) -> dict[str, float]:
    """The whole scenario on a running system, the users' random choices drawn from `seed`; returns
    how long each phase took."""
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    started = time.monotonic()
    customers = create(world, sizes, rng)
    timings["create"] = time.monotonic() - started
    mark = time.monotonic()
    world.wait_until(
        f"the {sizes.customers} new customers to reach QuickBooks",
        lambda: all(str(c) in world.links(C) for c in customers),
        timeout=quiet_timeout,
    )
    timings["linked"] = time.monotonic() - mark
    mark = time.monotonic()
    written = edit(world, sizes, customers, rng)
    timings["edit"] = time.monotonic() - mark
    timings["quiet"] = world.wait_until_quiet(timeout=quiet_timeout)
    mark = time.monotonic()
    assert_converged(world, sizes, written)
    timings["check"] = time.monotonic() - mark
    return timings
