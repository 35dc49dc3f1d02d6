"""The whole loop: engine.runner.Runner with the in-memory fake as the app and QboConnector on the
emulator, webhooks delivered to our receiver, the state store on SQLite."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.quickbooks.connector import QboConnector
from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from connectors.quickbooks.mapping import MappingContext
from connectors.quickbooks.match import initial_match
from connectors.quickbooks.receiver import create_receiver_app, ingest_inbox
from engine.fakes import FakeConnector
from engine.model import EntityType, Side
from engine.ports import StateStore
from engine.runner import Runner
from policies import PolicySet, parse_policy
from tests.quickbooks.conftest import Rig, running_receiver
from tests.support.sample import CUSTOMERS, ITEMS, invoice_for
from tests.support.stores import fresh_store, linked_id

C, ITEM, INV, PAY = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT
CONNECTION = "e2e"
VERIFIER = "e2e-verifier-token"
#: Items flow both ways here so that pulling an item from QuickBooks is tested too.
POLICY = parse_policy("version: 1\nentities:\n  item:\n    direction: both\n", "e2e policy")


@dataclass
class Loop:
    rig: Rig
    runner: Runner
    app: FakeConnector
    qbo: QboConnector
    store: StateStore

    def qbo_id(self, entity: EntityType, app_id: str) -> str:
        return linked_id(self.store, CONNECTION, entity, Side.APP, app_id)

    def app_id(self, entity: EntityType, qbo_id: str) -> str:
        return linked_id(self.store, CONNECTION, entity, Side.QUICKBOOKS, qbo_id)

    def in_qbo(self, entity: str) -> list[dict[str, Any]]:
        store = self.rig.qbo.emulator.store
        with store.lock:
            return [dict(row.data) for row in store.all(entity)]

    def process_webhooks(self) -> int:
        return ingest_inbox(self.store, {self.rig.qbo.realm_id: self.qbo}, self.rig.clock).events


def make_loop(stack: ExitStack, tmp_path: Path, policy: PolicySet = POLICY, **config: Any) -> Loop:
    store = stack.enter_context(fresh_store("sqlite", tmp_path))
    rig_clock_holder: list[Rig] = []
    receiver = create_receiver_app(store, VERIFIER, _LateClock(rig_clock_holder))
    url = stack.enter_context(running_receiver(receiver))
    emulator_config = EmulatorConfig(
        webhook_url=f"{url}/webhooks/quickbooks", verifier_token=VERIFIER, webhook_batch_window=0.05, **config
    )
    qbo = stack.enter_context(running_emulator(emulator_config))
    rig = Rig(qbo, store, stack)
    rig_clock_holder.append(rig)
    rig.connect(CONNECTION)
    cap = config.get("cdc_max_objects", 1000)
    connector = QboConnector(
        rig.client(CONNECTION), MappingContext(income_account="1"), policy, rig.clock, CONNECTION, cdc_cap=cap
    )
    app = FakeConnector(Side.APP, CONNECTION, rig.clock)
    runner = Runner(store, {Side.APP: app, Side.QUICKBOOKS: connector}, policy, rig.clock, CONNECTION)
    return Loop(rig, runner, app, connector, store)


class _LateClock:
    """The rig's clock, which exists only once the emulator (whose URL the receiver must know) runs."""

    def __init__(self, holder: list[Rig]) -> None:
        self.holder = holder

    def now(self) -> Any:
        return self.holder[0].clock.now()


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    with ExitStack() as stack:
        yield make_loop(stack, tmp_path)


def seed_app(loop: Loop) -> dict[str, Any]:
    customers = [loop.app.create(C, dict(c)) for c in CUSTOMERS]
    items = [loop.app.create(ITEM, dict(i)) for i in ITEMS]
    invoice = loop.app.create(INV, invoice_for(customers[0], (items[0], items[1])))
    return {"customers": customers, "items": items, "invoice": invoice}


def ok_deliveries(loop: Loop) -> int:
    return sum(1 for d in loop.rig.qbo.webhook_deliveries()["deliveries"] if d["status"] == 200)


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the emulator's webhooks")
        time.sleep(0.02)


def test_push_and_pull_of_all_four_entities(loop: Loop) -> None:
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    # Pushed: customers, items (with the configured income account), the invoice; QuickBooks totals it.
    assert sorted(c["DisplayName"] for c in loop.in_qbo("Customer")) == sorted(
        c["display_name"] for c in CUSTOMERS
    )
    assert {i["IncomeAccountRef"]["value"] for i in loop.in_qbo("Item")} == {"1"}
    (qbo_invoice,) = loop.in_qbo("Invoice")
    assert Decimal(str(qbo_invoice["TotalAmt"])) == Decimal("339.98")
    app_invoice = loop.app.get(INV, ids["invoice"])
    assert app_invoice is not None and app_invoice["total"] == Decimal("339.98")
    # Pulled: an accountant records the payment, and adds a customer and an item, in QuickBooks.
    qbo_customer = loop.qbo_id(C, ids["customers"][0])
    loop.rig.qbo.create_record(
        "Payment",
        {
            "CustomerRef": {"value": qbo_customer},
            "TotalAmt": 339.98,
            "Line": [{"Amount": 339.98, "LinkedTxn": [{"TxnId": qbo_invoice["Id"], "TxnType": "Invoice"}]}],
        },
    )
    walk_in = loop.rig.qbo.create_record("Customer", {"DisplayName": "Walk-in Client"})
    loop.rig.qbo.create_record(
        "Item", {"Name": "Call-out fee", "Type": "Service", "IncomeAccountRef": {"value": "1"}}
    )
    loop.runner.run_until_quiet()
    app_invoice = loop.app.get(INV, ids["invoice"])
    assert app_invoice is not None and app_invoice["balance"] == Decimal("0.00")
    (payment,) = loop.app.all(PAY).values()
    assert payment["applications"][0]["amount"] == Decimal("339.98")
    assert loop.app.get(C, loop.app_id(C, walk_in["Id"])) is not None
    assert "Call-out fee" in {i["name"] for i in loop.app.all(ITEM).values()}
    # Quiet means quiet: nothing more to write, no duplicate anywhere.
    again = loop.runner.run_until_quiet()
    assert again.applied == 0
    assert len(loop.in_qbo("Customer")) == 3 and len(loop.in_qbo("Invoice")) == 1


def test_a_dropped_webhook_is_caught_by_the_cdc_poll(loop: Loop) -> None:
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    first, second = (loop.qbo_id(C, app_id) for app_id in ids["customers"])
    loop.process_webhooks()  # what the seeding's own writes notified: echoes, nothing new
    # A delivered webhook: the receiver stores it, one CDC read brings the record, no poll needed.
    delivered = ok_deliveries(loop)
    loop.rig.qbo.edit_record("Customer", second, {"Notes": "delivered webhook"})
    wait_for(lambda: ok_deliveries(loop) > delivered)
    assert loop.process_webhooks() >= 1
    loop.runner.decide_pending()
    loop.runner.apply_pending()
    assert loop.app.get(C, ids["customers"][1])["notes"] == "delivered webhook"  # type: ignore[index]
    # A dropped webhook: nothing reaches the inbox...
    loop.rig.qbo.inject_fault("webhook_drop", count=1)
    loop.rig.qbo.edit_record("Customer", first, {"Notes": "dropped webhook"})
    wait_for(lambda: any("dropped" in d["note"] for d in loop.rig.qbo.webhook_deliveries()["deliveries"]))
    assert loop.process_webhooks() == 0
    assert loop.app.get(C, ids["customers"][0])["notes"] is None  # type: ignore[index]
    # ...and the scheduled CDC poll catches it, in one (metered) call for all four entities.
    loop.rig.qbo.clear_request_log()
    changed = loop.runner.poll_side_new(Side.QUICKBOOKS)
    assert first in {key.external_id for key in changed if key.entity is C}
    assert loop.rig.qbo.request_log()["by_endpoint"] == {"cdc": 1}
    loop.runner.run_until_quiet()
    assert loop.app.get(C, ids["customers"][0])["notes"] == "dropped webhook"  # type: ignore[index]


def test_a_webhook_read_hands_over_only_versions_not_journaled_yet(loop: Loop) -> None:
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    loop.process_webhooks()  # the echoes of the seeding's writes
    customer = loop.qbo_id(C, ids["customers"][0])
    delivered = ok_deliveries(loop)
    loop.rig.qbo.edit_record("Customer", customer, {"Notes": "one edit"})
    wait_for(lambda: ok_deliveries(loop) > delivered)
    # The CDC read goes a minute back (its overlap) and brings the seeding's records again: only the
    # one new version is mapped and handed over, the rest are known to the journal.
    assert loop.process_webhooks() == 1
    loop.runner.decide_pending()
    loop.runner.apply_pending()
    assert loop.app.get(C, ids["customers"][0])["notes"] == "one edit"  # type: ignore[index]


def test_a_cdc_window_over_the_cap_loses_no_change(tmp_path: Path) -> None:
    with ExitStack() as stack:
        loop = make_loop(stack, tmp_path, cdc_max_objects=5)
        seed_app(loop)
        loop.runner.run_until_quiet()
        made = [loop.rig.qbo.create_record("Customer", {"DisplayName": f"Bulk {n:02d}"}) for n in range(12)]
        for record in made[::3]:
            loop.rig.qbo.edit_record("Customer", record["Id"], {"Notes": "edited"})
        loop.runner.run_until_quiet()
        names = {c["display_name"]: c for c in loop.app.all(C).values()}
        assert {f"Bulk {n:02d}" for n in range(12)} <= set(names)
        assert [names[f"Bulk {n:02d}"]["notes"] for n in range(0, 12, 3)] == ["edited"] * 4


def test_initial_match_links_an_existing_customer_by_email_instead_of_duplicating(loop: Loop) -> None:
    existing = loop.rig.qbo.create_record(
        "Customer",
        {
            "DisplayName": "Amelie OBrien (QB)",
            "PrimaryEmailAddr": {"Address": "amelie@obrien-bakery.example"},
        },
    )
    ids = seed_app(loop)
    report = initial_match(loop.store, CONNECTION, loop.app, loop.qbo, POLICY, loop.rig.clock)
    assert report.linked[C] == [(ids["customers"][0], existing["Id"])]
    loop.runner.run_until_quiet()
    assert len(loop.in_qbo("Customer")) == 2
    assert loop.qbo_id(C, ids["customers"][0]) == existing["Id"]


def test_a_duplicate_display_name_gets_a_suffix(loop: Loop) -> None:
    loop.rig.qbo.create_record("Customer", {"DisplayName": "Núñez & Sons Plumbing", "Notes": "another firm"})
    ids = seed_app(loop)
    loop.runner.run_until_quiet()
    ours = loop.rig.qbo.read_record("Customer", loop.qbo_id(C, ids["customers"][1]))
    assert ours["DisplayName"] == "Núñez & Sons Plumbing (2)"
    assert len(loop.in_qbo("Customer")) == 3


def test_a_cdc_window_over_quickbooks_real_1000_object_cap_loses_no_change(tmp_path: Path) -> None:
    from connectors.quickbooks.emulator import records

    with ExitStack() as stack:
        loop = make_loop(stack, tmp_path)  # the emulator's and the connector's cap: QuickBooks' 1000
        loop.runner.poll(Side.QUICKBOOKS, C)  # the first read (a sweep) hands over to CDC
        ctx = loop.rig.qbo.emulator.ctx
        made = {records.create(ctx, "Customer", {"DisplayName": f"Bulk {n:04d}"})["Id"] for n in range(1050)}
        seen = {key.external_id for key in loop.runner.poll_new(Side.QUICKBOOKS, C)}
        cdc_calls = loop.rig.qbo.request_log()["by_endpoint"].get("cdc", 0)
    assert made <= seen, f"{len(made - seen)} of 1050 changes were lost"
    assert cdc_calls >= 2, "one CDC answer cannot hold 1050 objects: the window must have been split"
