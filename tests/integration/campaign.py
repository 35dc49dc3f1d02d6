"""The fault campaign's script: what the users do (the app's staff create customers and invoices and
edit customers, the accountant edits customers in QuickBooks) with faults dropped in between, all drawn
from one seed so a failing run can be replayed.

Every edit remembers its value, when it was made, and what its own side showed for that field just
before: an edit made after the other side's last edit had already arrived must win (see
`faults_count.lost_updates`).
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.model import Side
from engine.state import ConnectionStatus
from examples.invoicing.actions import add_customer, add_invoice
from examples.invoicing.edit import edit_record
from tests.integration.faults_world import HOLD_MARGIN, QUICKBOOKS_TIMEOUT, Campaign, holder, kill_9

#: Canonical field -> the app's column, and -> how to read and set it in a QuickBooks Customer.
APP_COLUMNS = {"notes": "notes", "email": "email", "phone": "phone", "company_name": "company"}


def quickbooks_value(customer: dict[str, Any], name: str) -> Any:
    if name == "phone":
        return (customer.get("PrimaryPhone") or {}).get("FreeFormNumber")
    if name == "email":
        return (customer.get("PrimaryEmailAddr") or {}).get("Address")
    return customer.get({"notes": "Notes", "company_name": "CompanyName"}[name])


def quickbooks_body(name: str, value: str) -> dict[str, Any]:
    bodies: dict[str, dict[str, Any]] = {
        "notes": {"Notes": value},
        "phone": {"PrimaryPhone": {"FreeFormNumber": value}},
        "company_name": {"CompanyName": value},
    }
    return bodies[name]


@dataclass(frozen=True)
class Size:
    customers: int
    invoices: int
    app_edits: int
    quickbooks_edits: int
    #: How many times each kind of fault is injected.
    rounds: int


SIZES = {
    "small": Size(customers=8, invoices=2, app_edits=20, quickbooks_edits=12, rounds=1),
    "large": Size(customers=120, invoices=20, app_edits=300, quickbooks_edits=200, rounds=6),
}

#: The faults, in the words of the report.
FAULTS = (
    "rate_limit_storm",
    "server_error_burst",
    "timeout_after_commit",
    "webhook_duplicate",
    "webhook_reorder",
    "webhook_drop",
    "revoke_and_reconnect",
    "kill_worker_mid_apply",
    "flush_redis",
)
#: The faults the emulator injects, by the kind it counts them under (`fired`).
EMULATED = {
    "rate_limit_storm": "rate_limit",
    "server_error_burst": "server_error",
    "timeout_after_commit": "timeout_after_commit",
    "webhook_duplicate": "webhook_duplicate",
    "webhook_reorder": "webhook_reorder",
    "webhook_drop": "webhook_drop",
}


@dataclass(frozen=True)
class Edit:
    side: Side
    value: str
    at: float
    #: What this side showed for the field just before the edit.
    prior: Any


@dataclass
class Log:
    """What the users did and which faults were injected."""

    names: dict[int, str] = field(default_factory=dict)  # app customer id -> display name
    invoices: list[str] = field(default_factory=list)  # invoice numbers
    last: dict[tuple[int, str], dict[Side, Edit]] = field(default_factory=dict)
    injected: Counter[str] = field(default_factory=Counter)
    edits: Counter[Side] = field(default_factory=Counter)
    #: Steps that took more than a second (waiting for the sync or a process), for the report.
    slow: list[str] = field(default_factory=list)


class Script:
    """Plays the users' actions and the faults in the seeded order."""

    def __init__(self, campaign: Campaign, size: Size, seed: int) -> None:
        self.campaign = campaign
        self.world = campaign.world
        self.qbo = campaign.world.qbo
        self.size = size
        self.rng = random.Random(seed)
        self.log = Log()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._qbo_ids: dict[str, str] = {}
        self._app = sa.create_engine(self.world.app_url, poolclass=sa.NullPool)

    def close(self) -> None:
        self._app.dispose()

    def start_worker(self) -> None:
        name = f"worker-{len(self.workers) + 1}"
        self.workers[name] = self.world.processes.start(name, "worker", "--threads", "4")

    def steps(self) -> list[str]:
        creates = ["customer"] * self.size.customers + ["invoice"] * self.size.invoices
        edits = ["app"] * self.size.app_edits + ["quickbooks"] * self.size.quickbooks_edits
        self.rng.shuffle(edits)
        users = creates + edits
        faults = [f for f in FAULTS for _ in range(self.size.rounds)]
        self.rng.shuffle(faults)
        # Faults land anywhere after the first few creates, so creates meet them too.
        for fault in faults:
            users.insert(self.rng.randrange(2, len(users) + 1), fault)
        return users

    def play(self) -> None:
        for n, step in enumerate(self.steps()):
            started = time.monotonic()
            getattr(self, step)(n)
            if (took := time.monotonic() - started) > 1:
                self.log.slow.append(f"{n} {step} {took:.1f} s")
            if n % 10 == 0:
                self.world.processes.check_alive()

    # the users

    def customer(self, n: int) -> None:
        name = f"Faulty {len(self.log.names):04d} Ødegård-{self.rng.randrange(10**6):06d}"
        app_id = add_customer(
            self.world.app_url,
            display_name=name,
            first_name="Åsa",
            last_name=f"O'Neil {n}",
            email=f"faulty{n}@example.com",
            phone=f"555-010-{n:04d}",
            city="Québec",
        )
        self.log.names[app_id] = name

    def invoice(self, n: int) -> None:
        number = f"F-{len(self.log.invoices):05d}"
        customers = sorted(self.log.names)
        add_invoice(
            self.world.app_url,
            customers[len(self.log.invoices) % len(customers)],
            number,
            issued_on=date(2026, 3, 1 + n % 28),
            lines=[
                {"item_id": 1, "description": "Design", "quantity": 1 + n % 3, "unit_price": "75.00"},
                {"item_id": 2, "quantity": 2, "unit_price": "19.99", "taxable": True},
            ],
        )
        self.log.invoices.append(number)

    def _contested(self) -> list[int]:
        return sorted(self.log.names)[:4]

    def app(self, n: int, name: str | None = None) -> None:
        contested = n % 5 == 0
        app_id = self.rng.choice(self._contested() if contested else sorted(self.log.names))
        if name is None:
            name = self.rng.choice(["notes", "email", "company_name"] + (["phone"] if contested else []))
        value = {"email": f"app{n}@example.com", "phone": f"555-020-{n:04d}"}.get(name, f"app {n}")
        column = APP_COLUMNS[name]
        with self._app.connect() as conn:
            prior = conn.exec_driver_sql(f"SELECT {column} FROM customers WHERE id = {app_id}").scalar_one()
        edit_record(self.world.app_url, "customer", app_id, {column: value})
        self._note(app_id, name, Edit(Side.APP, value, time.monotonic(), prior))

    def quickbooks(self, n: int) -> None:
        contested = n % 5 == 0
        app_id, qbo_id = self._in_quickbooks(self._contested() if contested else sorted(self.log.names))
        name = self.rng.choice(["notes", "company_name"] + (["phone"] if contested else []))
        value = f"555-030-{n:04d}" if name == "phone" else f"qbo {n}"
        prior = quickbooks_value(self.qbo.read_record("Customer", qbo_id), name)
        self.qbo.edit_record("Customer", qbo_id, quickbooks_body(name, value))
        self._note(app_id, name, Edit(Side.QUICKBOOKS, value, time.monotonic(), prior))

    def _in_quickbooks(self, candidates: list[int]) -> tuple[int, str]:
        """One of the candidates that QuickBooks has (found by its name, as the accountant would): the
        one drawn if it is there, else another that is, waiting for the sync to bring one if none is."""
        drawn = self.rng.choice(candidates)
        deadline = time.monotonic() + 90
        while True:
            if self.log.names[drawn] not in self._qbo_ids:
                customers = self.qbo.list_records("Customer")
                self._qbo_ids = {str(c["DisplayName"]): str(c["Id"]) for c in customers}
            present = [c for c in candidates if self.log.names[c] in self._qbo_ids]
            if present:
                app_id = drawn if drawn in present else self.rng.choice(present)
                return app_id, self._qbo_ids[self.log.names[app_id]]
            if time.monotonic() > deadline:
                raise AssertionError("no customer the accountant could edit reached QuickBooks in 90 s")
            time.sleep(0.2)
            self.world.processes.check_alive()

    def _note(self, app_id: int, name: str, edit: Edit) -> None:
        self.log.last.setdefault((app_id, name), {})[edit.side] = edit
        self.log.edits[edit.side] += 1

    # the faults

    def rate_limit_storm(self, n: int) -> None:
        """Every call answers 429 for a second or two; armed again if it blew over before any call came
        (the workers were all waiting on something else), so the storm really meets the sync."""
        before = self.qbo.faults()["fired"].get("rate_limit", 0)

        def met() -> bool:
            faults = self.qbo.faults()
            if faults["fired"].get("rate_limit", 0) > before:
                return True
            if not any(a["kind"] == "rate_limit" for a in faults["armed"]):
                self.qbo.inject_fault("rate_limit", seconds=round(self.rng.uniform(1.0, 2.5), 2))
            return False

        self.world.wait_until("a 429 storm to meet a request", met, timeout=60)
        self.log.injected["rate_limit_storm"] += 1

    def server_error_burst(self, n: int) -> None:
        status = self.rng.choice([500, 502, 503, 504])
        self.qbo.inject_fault("server_error", count=self.rng.randint(3, 8), status=status)
        self.log.injected["server_error_burst"] += 1

    # Each fault that waits for a kind of traffic comes with a user edit that makes some.

    def timeout_after_commit(self, n: int) -> None:
        """The next customer writes commit in QuickBooks, whose answers come after the client gave up."""
        delay = QUICKBOOKS_TIMEOUT + HOLD_MARGIN
        self.qbo.inject_fault("timeout_after_commit", count=2, delay=delay, path_contains="/customer")
        self.app(n, "notes")
        self.log.injected["timeout_after_commit"] += 1

    def webhook_duplicate(self, n: int) -> None:
        self.qbo.inject_fault("webhook_duplicate", count=3)
        self.quickbooks(n)
        self.log.injected["webhook_duplicate"] += 1

    def webhook_reorder(self, n: int) -> None:
        self.qbo.inject_fault("webhook_reorder", count=2)
        self.quickbooks(n)
        self.log.injected["webhook_reorder"] += 1

    def webhook_drop(self, n: int) -> None:
        self.qbo.inject_fault("webhook_drop", count=3)
        self.quickbooks(n)
        self.log.injected["webhook_drop"] += 1

    def revoke_and_reconnect(self, n: int) -> None:
        """The user disconnects the app in QuickBooks; once ledgersync has noticed, reconnects it from the
        web app."""
        self.qbo.disconnect()
        self.world.wait_until(
            "ledgersync to notice the revoked connection",
            lambda: self.campaign.connection_status() is ConnectionStatus.NEEDS_REAUTH,
            timeout=60,
        )
        self.campaign.reconnect()
        self.log.injected["revoke_and_reconnect"] += 1

    def kill_worker_mid_apply(self, n: int) -> None:
        """kill -9 the worker whose customer write QuickBooks has committed but not yet answered, then
        start a new worker in its place."""
        # The write goes alone (the apply actor) or in a /batch (the kick's sweep got to it first):
        # either is held, and the kill lands between QuickBooks' commit and our record of it.
        self.qbo.inject_fault("timeout_after_commit", delay=10.0, path_contains="/customer")
        self.qbo.inject_fault("timeout_after_commit", delay=10.0, path_contains="/batch")
        self.app(n, "notes")  # a customer write to hold
        found: list[str] = []

        def held_by_a_worker() -> bool:
            found[:] = [
                who
                for held in self.qbo.faults()["held"]
                if held["kind"] == "timeout_after_commit" and (who := holder(self.workers, held["client"]))
            ]
            return bool(found)

        self.world.wait_until("a worker waiting on a committed customer write", held_by_a_worker, timeout=60)
        kill_9(self.workers[found[0]])
        self.start_worker()
        self.log.injected["kill_worker_mid_apply"] += 1

    def flush_redis(self, n: int) -> None:
        self.campaign.flush_redis()
        self.log.injected["flush_redis"] += 1
