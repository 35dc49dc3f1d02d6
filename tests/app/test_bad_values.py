"""One bad value in one app row parks that record, names table, row and column, and stops nothing else.

Driven through the real runner, state store and app connector on a schema of our own (tests/app/shop.py),
on SQLite and PostgreSQL, with the in-tree QuickBooks fake on the other side.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.app import SqlConnector
from engine.clock import SystemClock
from engine.fakes.connector import FakeConnector
from engine.model import EntityType, Side
from engine.runner import Runner
from engine.state import AuditAction, ParkedRecord
from engine.store import SqlStateStore
from policies import PolicySet
from tests.app.shop import Shop, create_shop
from tests.support.stores import fresh_store, postgres_schema, postgres_url

INVOICE, CUSTOMER, ITEM = EntityType.INVOICE, EntityType.CUSTOMER, EntityType.ITEM


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    if request.param == "postgres":
        with postgres_schema() as schema:
            yield create_shop(postgres_url(), schema, tmp_path)
    else:
        yield create_shop(f"sqlite:///{tmp_path / 'shop.db'}", None, tmp_path)


class World:
    def __init__(self, shop: Shop, store: SqlStateStore) -> None:
        self.shop = shop
        self.store = store
        self.app: SqlConnector = shop.connector()
        self.quickbooks = FakeConnector(Side.QUICKBOOKS, "default", SystemClock(), computes_totals=True)
        sides = {Side.APP: self.app, Side.QUICKBOOKS: self.quickbooks}
        self.runner = Runner(store, sides, PolicySet.default(), SystemClock(), "default")

    def parked(self) -> list[ParkedRecord]:
        with self.store.session() as s:
            return s.parked_records("default")

    def in_quickbooks(self, entity: EntityType) -> list[dict[str, Any]]:
        return list(self.quickbooks.all(entity).values())

    def qbo_of(self, entity: EntityType, app_id: str) -> dict[str, Any] | None:
        with self.store.session() as s:
            link = s.find_link("default", entity, Side.APP, app_id)
        if link is None or link.quickbooks_id is None:
            return None
        return self.quickbooks.get(entity, link.quickbooks_id)


@pytest.fixture
def world(shop: Shop, tmp_path: Path) -> Iterator[World]:
    with fresh_store("sqlite", tmp_path) as store:
        made = World(shop, store)
        try:
            yield made
        finally:
            made.app.close()


def not_a_number(shop: Shop) -> tuple[str, str]:
    """A line amount the database keeps but no amount is, and how the message quotes it."""
    return (
        ("abc", "'abc' is not a number")
        if shop.dialect == "sqlite"
        else ("NaN", "NaN is not a number QuickBooks can hold")
    )


def seed(shop: Shop, bad_amount: Any) -> None:
    shop.add_client("C-1", "Ada's Bakery")
    shop.add_client("C-2", "Bob's Garage")
    shop.add_product("P-1", "Widget")
    shop.add_bill(1, "C-1", [{"line_total": "5.00"}])
    shop.add_bill(2, "C-2", [{"line_total": "5.00"}, {"line_total": bad_amount}], second=1)
    shop.add_bill(3, "C-1", [{"line_total": "10.00", "qty": "2"}], second=2)


def test_a_line_amount_that_is_not_a_number_parks_its_invoice_and_the_rest_syncs(world: World) -> None:
    bad, why = not_a_number(world.shop)
    seed(world.shop, bad)

    stats = world.runner.run_until_quiet()  # no exception: the page of changes is read through

    assert len(world.in_quickbooks(CUSTOMER)) == 2 and len(world.in_quickbooks(ITEM)) == 1
    assert world.qbo_of(INVOICE, "1") is not None and world.qbo_of(INVOICE, "3") is not None
    assert world.qbo_of(INVOICE, "2") is None
    (parked,) = world.parked()
    assert (parked.side, parked.entity, parked.external_id) == (Side.APP, INVOICE, "2")
    assert parked.reason == f"row 3 of bill_rows, column line_total: {why}"
    assert stats.rejected >= 1
    with world.store.session() as s:
        audit = [e for e in s.history("default", side=Side.APP, external_id="2") if e.entity is INVOICE]
    assert [e.action for e in audit] == [AuditAction.PARKED], "parked once, not once per pass"

    # The user fixes the line the way the app does (the bill gets a new version): it syncs, the entry goes.
    world.shop.run("UPDATE bill_rows SET line_total = '7.50' WHERE row_id = 3")
    world.shop.touch("bills", "bill_no", 2, second=10)
    world.runner.run_until_quiet()
    assert world.parked() == []
    invoice = world.qbo_of(INVOICE, "2")
    assert invoice is not None
    assert [str(line["amount"]) for line in invoice["lines"]] == ["5.00", "7.50"]


def test_a_fix_that_changes_no_version_is_found_too(world: World) -> None:
    bad, _ = not_a_number(world.shop)
    seed(world.shop, bad)
    world.runner.run_until_quiet()
    assert [p.external_id for p in world.parked()] == ["2"]

    # A raw UPDATE of the line alone: no new version, no new touched, nothing a poll would see.
    world.shop.run("UPDATE bill_rows SET line_total = '7.50' WHERE row_id = 3")
    world.runner.run_until_quiet()

    assert world.parked() == []
    assert world.qbo_of(INVOICE, "2") is not None


def test_a_row_still_bad_after_an_edit_stays_parked_with_the_new_reason(world: World) -> None:
    bad, _ = not_a_number(world.shop)
    seed(world.shop, bad)
    world.runner.run_until_quiet()
    world.shop.run("UPDATE bill_rows SET line_total = '4.00' WHERE row_id = 3")
    world.shop.touch(
        "bills", "bill_no", 2, second=10, issued="infinity" if world.shop.dialect != "sqlite" else "soon"
    )
    world.runner.run_until_quiet()
    (parked,) = world.parked()
    assert parked.reason.startswith("row 2 of bills, column issued: ")
    assert "is not a date" in parked.reason or "cannot be read" in parked.reason
    assert world.qbo_of(INVOICE, "2") is None


def test_an_empty_display_name_is_parked_saying_what_to_do(world: World) -> None:
    world.shop.add_client("C-1", "Ada's Bakery")
    world.shop.add_client("C-2", "")
    world.shop.add_client("C-3", None)
    world.runner.run_until_quiet()

    assert [c["display_name"] for c in world.in_quickbooks(CUSTOMER)] == ["Ada's Bakery"]
    reasons = {p.external_id: p.reason for p in world.parked()}
    assert reasons == {
        "C-2": "row 'C-2' of clients, column label: '' is empty, but every customer needs a display name:"
        " fill it in",
        "C-3": "row 'C-3' of clients, column label: is empty (NULL), but every customer needs a display name:"
        " fill it in",
    }
    world.shop.touch("clients", "code", "C-2", second=5, label="Cleo's Cafe")
    world.runner.run_until_quiet()
    assert sorted(c["display_name"] for c in world.in_quickbooks(CUSTOMER)) == ["Ada's Bakery", "Cleo's Cafe"]
    assert [p.external_id for p in world.parked()] == ["C-3"]


def test_bad_values_of_every_kind_each_park_their_own_record(world: World) -> None:
    shop = world.shop
    sqlite = shop.dialect == "sqlite"
    shop.add_client("C-1", "Ada's Bakery")
    shop.add_client("C-2", "Bob's Garage", enabled="maybe" if sqlite else None)
    if sqlite:  # PostgreSQL keeps text valid: only SQLite holds bytes that are not UTF-8 in a text column
        shop.add_client("C-3", b"\xffbad")
    shop.add_product("P-1", "Widget")
    shop.add_product("P-2", "Gadget", cost="12,50" if sqlite else "1e30")
    shop.add_product("P-3", "Doohickey", legacy_note=b"\xc3\x28")
    shop.add_bill(1, "C-1", [{}])
    shop.add_bill(2, "  ", [{}], second=1)
    shop.add_bill(3, "C-1", [{"product": ""}], second=2)
    shop.add_bill(4, "C-1", [{}], second=3, due="31/12/2026" if sqlite else "infinity")

    world.runner.run_until_quiet()

    reasons = {(p.entity.value, p.external_id): p.reason for p in world.parked()}
    expected = {
        ("item", "P-2"): "row 'P-2' of products, column cost: ",
        ("item", "P-3"): "row 'P-3' of products, the mapped expression: b'\\xc3(' is not UTF-8 text",
        ("invoice", "2"): "row 2 of bills, column client_code: '  ' is not a customer id (it is blank)",
        ("invoice", "3"): "row 3 of bill_rows, column product: '' is not an item id (it is blank)",
        ("invoice", "4"): "row 4 of bills, column due: ",
    }
    if sqlite:
        expected[("customer", "C-2")] = "row 'C-2' of clients, column enabled: 'maybe' is not a yes/no value"
        expected[("customer", "C-3")] = "row 'C-3' of clients, column label: b'\\xffbad' is not UTF-8 text"
    assert set(reasons) == set(expected)
    for key, start in expected.items():
        assert reasons[key].startswith(start), reasons[key]
    assert world.qbo_of(CUSTOMER, "C-1") is not None and world.qbo_of(ITEM, "P-1") is not None
    assert world.qbo_of(INVOICE, "1") is not None
