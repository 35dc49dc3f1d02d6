"""The write pipeline driven as a user drives it: `ledgersync backfill` on the emulator with QuickBooks'
limits (on a 1 s minute), batch writes on by default. Waves of batches several in flight, a 429 storm
ridden out, and a record QuickBooks refuses holding back only what references it."""

from __future__ import annotations

import json
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.quickbooks.emulator import EmulatorConfig
from engine.pipeline import IN_FLIGHT
from examples.invoicing.actions import add_customer, add_invoice
from examples.invoicing.seed import CUSTOMERS, INVOICES, ITEMS, PAYMENTS
from ledgersync.cli import _register, app
from ledgersync.demo import Sandbox, sandbox

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if not app.registered_groups:
        _register()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with sandbox(tmp_path, EmulatorConfig(minute_seconds=1.0)) as ready:
        text = ready.config_path.read_text(encoding="utf-8")
        ready.config_path.write_text(text.replace("quickbooks:\n", "quickbooks:\n  minute_seconds: 1.0\n", 1))
        yield ready


def cli(box: Sandbox, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(box.config_path), *args], env=box.environ)
    crash = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
    return result.exit_code, result.output + (crash if result.exit_code else "")


def names(box: Sandbox) -> Counter[str]:
    return Counter(str(r.data["DisplayName"]) for r in box.qbo.emulator.store.all("Customer"))


def count(box: Sandbox, entity: str) -> int:
    return len(list(box.qbo.emulator.store.all(entity)))


def add_customers(box: Sandbox, n: int) -> list[str]:
    added = [f"Pipeline Customer {i:03}" for i in range(n)]
    for i, name in enumerate(added):
        add_customer(box.app_url, display_name=name, email=f"p{i:03}@example.test")
    return added


class HeldWatch:
    """Polls the emulator for the /batch requests it is holding (injected latency): the most at once."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            held: list[dict[str, Any]] = self.box.qbo.faults()["held"]
            self.most = max(self.most, sum("/batch" in h["path"] for h in held))

    def __enter__(self) -> HeldWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def test_a_backfill_sends_a_wave_s_batches_together_within_the_limits_and_reads_nothing_back(
    box: Sandbox,
) -> None:
    added = add_customers(box, 120)
    assert cli(box, "connect")[0] == 0
    box.qbo.clear_request_log()
    # Each /batch answer takes 0.4 s: sent one after another, the 5 batches of customers and items
    # would never overlap.
    box.qbo.inject_fault("latency", count=100, delay=0.4, path_contains="/batch")

    with HeldWatch(box) as watch:
        code, output = cli(box, "backfill", "--json")
    assert code == 0, output

    assert set(names(box).values()) == {1} and len(names(box)) == len(CUSTOMERS) + len(added)
    assert count(box, "Item") == len(ITEMS) and count(box, "Invoice") == len(INVOICES)
    assert count(box, "Payment") == len(PAYMENTS)
    log = box.qbo.request_log()
    calls = log["by_endpoint"]
    assert log["by_status"].get("429", 0) == 0
    # 126 customers and items: 5 batches (30 each, then 6), the invoices 1; the lone payment singly.
    assert calls["batch"] == 6, calls
    assert 2 <= watch.most <= IN_FLIGHT, f"at most {watch.most} batch request(s) in flight at once"
    assert not [e for e in calls if e.startswith("GET ")], f"a read after a write: {calls}"
    summary = json.loads(output)
    assert summary["applied"] >= len(added) and summary["outcomes"].get("parked", 0) == 0
    assert list(summary["phases"]) == ["match", "read", "write", "settle", "analyze"]


def test_a_429_storm_is_ridden_out_without_duplicates(box: Sandbox) -> None:
    added = add_customers(box, 70)
    assert cli(box, "connect")[0] == 0
    box.qbo.clear_request_log()
    # Every API call is refused for 1.2 s from now; the client holds the whole realm after each 429
    # (one emulated minute) and tries again, so the storm costs a few 429s, not one per op.
    box.qbo.inject_fault("rate_limit", status=429, seconds=1.2)

    code, output = cli(box, "backfill")
    assert code == 0, output

    assert set(names(box).values()) == {1} and len(names(box)) == len(CUSTOMERS) + len(added)
    assert count(box, "Invoice") == len(INVOICES) and count(box, "Payment") == len(PAYMENTS)
    throttled = box.qbo.request_log()["by_status"].get("429", 0)
    assert 0 < throttled <= 3 * IN_FLIGHT, f"{throttled} 429s"
    code, output = cli(box, "sync", "--json")
    assert code == 0 and json.loads(output)["applied"] == 0, output


def test_a_customer_quickbooks_refuses_holds_back_only_its_own_invoice(box: Sandbox) -> None:
    # QuickBooks refuses an e-mail address without a dot (2050, RFC 822); the app takes it.
    bad = add_customer(box.app_url, display_name="Bad Name", email="bad@nowhere")
    good = add_customer(box.app_url, display_name="Good Name", email="good@example.test")
    line = [{"item_id": 1, "quantity": 1, "unit_price": "10.00"}]
    add_invoice(box.app_url, bad, "BAD-1", line, date(2026, 11, 2))
    add_invoice(box.app_url, good, "GOOD-1", line, date(2026, 11, 2))
    assert cli(box, "connect")[0] == 0

    code, output = cli(box, "backfill")
    assert code == 0, output

    assert "Good Name" in names(box) and not [n for n in names(box) if n.startswith("Bad")]
    numbers = Counter(str(r.data.get("DocNumber")) for r in box.qbo.emulator.store.all("Invoice"))
    assert numbers["GOOD-1"] == 1 and "BAD-1" not in numbers
    assert count(box, "Invoice") == len(INVOICES) + 1, "every other invoice was written"
    code, output = cli(box, "status", "--json")
    (row,) = json.loads(output)
    parked = [p for p in row["parked"] if p["entity"] == "customer"]
    assert len(parked) == 1 and "Email" in parked[0]["error"], parked
