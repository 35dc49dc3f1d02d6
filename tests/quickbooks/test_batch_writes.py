"""Batch writes (`batch_writes: true`) on the emulator and the example app, through the real CLI.

Writes of every entity go in /batch requests, in dependency waves (customers and items, then invoices,
then payments); a name already taken falls back to the single path and its policy; a batch whose
answer is lost is sent again with the same requestid and bIds.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.quickbooks.emulator import EmulatorConfig
from examples.invoicing.actions import add_customer
from examples.invoicing.seed import CUSTOMERS, INVOICES, ITEMS, PAYMENTS
from ledgersync.cli import _register, app
from ledgersync.demo import Sandbox, sandbox

runner = CliRunner()
EXTRA = 60


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if not app.registered_groups:
        _register()


def configure(box: Sandbox, **settings: Any) -> None:
    """Add settings to the sandbox config's quickbooks section."""
    lines = "".join(f"  {key}: {json.dumps(value)}\n" for key, value in settings.items())
    text = box.config_path.read_text(encoding="utf-8")
    box.config_path.write_text(text.replace("quickbooks:\n", f"quickbooks:\n{lines}", 1), encoding="utf-8")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    # The emulator's rate-limit minute is shortened, so 40 batches a "minute" never holds a test up.
    with sandbox(tmp_path, EmulatorConfig(minute_seconds=1.0)) as ready:
        configure(ready, batch_writes=True, minute_seconds=1.0)
        yield ready


def cli(box: Sandbox, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(box.config_path), *args], env=box.environ)
    return result.exit_code, result.output


def add_customers(box: Sandbox, count: int) -> list[str]:
    names = [f"Batch Customer {n:02}" for n in range(count)]
    for n, name in enumerate(names):
        add_customer(box.app_url, display_name=name, email=f"batch{n:02}@example.test")
    return names


def names_in_quickbooks(box: Sandbox, entity: str, key: str = "DisplayName") -> Counter[str]:
    return Counter(str(r.data[key]) for r in box.qbo.emulator.store.all(entity))


def endpoints(box: Sandbox) -> dict[str, int]:
    """Requests by endpoint, once the emulator holds none: a request whose answer a fault holds (and
    the client gave up on) is logged when the hold ends, which can be after the command is done."""
    deadline = time.monotonic() + 10
    while box.qbo.emulator.faults.held() and time.monotonic() < deadline:
        time.sleep(0.05)
    return dict(box.qbo.request_log()["by_endpoint"])


def sync_summary(box: Sandbox, exit_code: int = 0) -> dict[str, Any]:
    code, output = cli(box, "sync", "--json")
    assert code == exit_code, output
    summary: dict[str, Any] = json.loads(output)
    return summary


def test_a_backfill_creates_every_record_once_in_far_fewer_batch_requests_and_converges(box: Sandbox) -> None:
    added = add_customers(box, EXTRA)
    assert cli(box, "connect")[0] == 0
    box.qbo.clear_request_log()

    code, output = cli(box, "backfill")
    assert code == 0, output

    customers = names_in_quickbooks(box, "Customer")
    assert sorted(customers) == sorted([c["display_name"] for c in CUSTOMERS] + added)
    assert set(customers.values()) == {1}, "every customer exactly once"
    assert len(names_in_quickbooks(box, "Item", "Name")) == len(ITEMS)
    assert len(list(box.qbo.emulator.store.all("Invoice"))) == len(INVOICES)
    assert len(list(box.qbo.emulator.store.all("Payment"))) == len(PAYMENTS)
    calls = endpoints(box)
    names = len(customers) + len(ITEMS)
    # 63 customers and 3 items in batches of 30 (30, 30, 6), then the 2 invoices that reference them in
    # one batch; the lone payment is a single write (free, where a batch of one is metered).
    assert calls["batch"] == 3 + 1 < names
    assert "POST customer" not in calls and "POST item" not in calls and "POST invoice" not in calls
    assert len(INVOICES) == 2 and calls["POST payment"] == len(PAYMENTS) == 1

    summary = sync_summary(box)
    assert summary["applied"] == 0 and summary["parked"] == 0


def test_a_taken_name_is_settled_alone_by_its_policy_and_the_rest_of_the_batch_applies(box: Sandbox) -> None:
    added = add_customers(box, 35)
    # Someone else's customer already has the name of one of ours (another e-mail: not a twin), and an
    # item named like one of the app's: customers get a suffix, items wait for a person (the policy).
    box.qbo.create_record("Customer", {"DisplayName": added[7], "PrimaryEmailAddr": {"Address": "x@y.test"}})
    taken_item = str(ITEMS[1]["name"])
    box.qbo.create_record("Item", {"Name": taken_item, "Type": "Service", "IncomeAccountRef": {"value": "1"}})
    assert cli(box, "connect")[0] == 0
    box.qbo.clear_request_log()

    summary = sync_summary(box, exit_code=4)  # 4: something is parked

    customers = names_in_quickbooks(box, "Customer")
    assert customers[added[7]] == 1 and customers[f"{added[7]} (2)"] == 1
    assert all(customers[name] == 1 for name in added)
    assert len(customers) == len(CUSTOMERS) + len(added) + 1
    items = names_in_quickbooks(box, "Item", "Name")
    assert items == Counter(str(i["name"]) for i in ITEMS), "the taken item name was not duplicated"
    assert summary["parked"] >= 1
    code, output = cli(box, "status", "--json")
    (row,) = json.loads(output)
    parked = [p for p in row["parked"] if p["entity"] == "item"]
    assert code == 0 and len(parked) == 1 and "already taken" in parked[0]["error"]
    calls = endpoints(box)
    assert calls["batch"] >= 2
    # Only the two taken names went the single way: the suffixed customer (its first try refused,
    # then the suffix), and the item the policy leaves to a person.
    assert calls.get("POST customer", 0) == 2 and calls.get("POST item", 0) == 1


def test_a_batch_whose_answer_is_lost_is_sent_again_and_duplicates_nothing(box: Sandbox) -> None:
    configure(box, timeout_seconds=0.5, server_error_retries=1, backoff_base_seconds=0.0)
    added = add_customers(box, EXTRA)
    assert cli(box, "connect")[0] == 0
    # The first batch is committed but its answer never arrives, twice: the client gives up, the ops
    # stay pending with their batch's key, and the next pass sends that same batch again.
    box.qbo.inject_fault("timeout_after_commit", count=2, delay=1.0, path_contains="/batch")
    box.qbo.clear_request_log()

    code, output = cli(box, "backfill")
    assert code == 0, output

    customers = names_in_quickbooks(box, "Customer")
    assert set(customers.values()) == {1}
    assert len(customers) == len(CUSTOMERS) + len(added)
    # 66 independent creates make 3 batches and the invoices one; the lost one was sent twice more (the
    # client's retry, then the next pass), each time with the same requestid and bIds, so QuickBooks
    # replayed it.
    assert endpoints(box)["batch"] == 4 + 2
    assert len([key for key in box.qbo.emulator.replays if key.count("|") == 2]) == 4
    assert sync_summary(box)["applied"] == 0
