"""What the tax, discount and currency sync tests share, whichever app connector they drive: the
companies' settings, a `Book` wiring an app connector to the emulator through the runner, and the check
that an invoice's totals, tax and balance agree to the cent."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

from connectors.quickbooks.connector import QboConnector
from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from connectors.quickbooks.emulator.profile import CompanyProfile
from connectors.quickbooks.emulator.server import EmulatorHandle
from connectors.quickbooks.mapping import MappingContext, TaxMode
from engine.clock import FakeClock
from engine.model import EntityType, Side
from engine.plan import OpStatus
from engine.ports import Connector, StateStore
from engine.runner import Runner
from policies import parse_policy
from tests.quickbooks.conftest import Rig
from tests.support.stores import fresh_store, linked_id

INV = EntityType.INVOICE
CONNECTION = "tax"
#: Everything both ways, so records made in QuickBooks reach the app too.
POLICY = parse_policy(
    "version: 1\nentities:\n  item:\n    direction: both\n  invoice:\n    direction: both\n",
    "tax policy",
)
#: The settings of `CompanyProfile.us_automated_sales_tax()` and `CompanyProfile.uk()`, as configured.
US_AST = MappingContext(income_account="1", automated_sales_tax=True, tax_codes=frozenset({"2"}))
UK = MappingContext(
    income_account="1",
    tax_mode=TaxMode.GLOBAL,
    taxable_tax_code="2",
    non_taxable_tax_code="5",
    home_currency="GBP",
    tax_codes=frozenset({"2", "3", "4", "5"}),
)

A = TypeVar("A", bound=Connector)


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@dataclass
class Book(Generic[A]):
    """One company in the emulator and one app, synced by a runner with a SQLite state store."""

    runner: Runner
    app: A
    store: StateStore
    qbo: EmulatorHandle

    def qbo_id(self, entity: EntityType, app_id: str) -> str:
        return linked_id(self.store, CONNECTION, entity, Side.APP, app_id)

    def app_id(self, entity: EntityType, qbo_id: str) -> str:
        return linked_id(self.store, CONNECTION, entity, Side.QUICKBOOKS, qbo_id)

    def in_qbo(self, entity: EntityType, app_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.qbo.read_record(entity.value.capitalize(), self.qbo_id(entity, app_id))
        return found

    def in_app(self, entity: EntityType, app_id: str) -> dict[str, Any]:
        """The record's canonical fields, as the app connector reads them."""
        return self.app.fetch(entity, app_id).fields

    def parked(self) -> list[str]:
        with self.store.session() as s:
            return [r.last_error or "" for r in s.ops(CONNECTION, [OpStatus.PARKED])]


def assert_agree(book: Book[Any], app_id: str) -> dict[str, Any]:
    """The invoice's total, tax and balance are the same on both sides, to the cent."""
    app, qbo = book.in_app(INV, app_id), book.in_qbo(INV, app_id)
    assert app["total"] == money(qbo["TotalAmt"])
    assert app["balance"] == money(qbo["Balance"])
    assert app["tax_total"] == money(qbo["TxnTaxDetail"]["TotalTax"])
    return app


def open_book(
    stack: ExitStack,
    tmp_path: Path,
    company: CompanyProfile,
    mapping: MappingContext,
    app: Callable[[FakeClock], A],
) -> Book[A]:
    """The emulator running `company`, connected and configured with `mapping`, and the app that
    `app` makes (given the test's clock), both under `POLICY`."""
    store = stack.enter_context(fresh_store("sqlite", tmp_path))
    qbo = stack.enter_context(running_emulator(EmulatorConfig(profile=company)))
    rig = Rig(qbo, store, stack)
    rig.connect(CONNECTION)
    connector = QboConnector(rig.client(CONNECTION), mapping, POLICY, rig.clock, CONNECTION)
    side = app(rig.clock)
    runner = Runner(store, {Side.APP: side, Side.QUICKBOOKS: connector}, POLICY, rig.clock, CONNECTION)
    return Book(runner, side, store, qbo)
