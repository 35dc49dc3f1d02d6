"""`ledgersync demo`: the whole product on temporary storage, told as a short story.

It starts the QuickBooks emulator and the example invoicing app, connects through OAuth, backfills,
then plays what real users do on both sides, prints each step, and ends by comparing both sides
field by field. Everything it runs is the real code path: config file, runtime, connectors, runner,
webhook receiver; only QuickBooks is the emulator.
"""

from __future__ import annotations

import re
import secrets
import shlex
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

from connectors.quickbooks.crypto import generate_key
from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle, running_emulator
from connectors.quickbooks.emulator.profile import CompanyProfile
from engine.accounts import add_user
from engine.compare import differing_fields
from engine.model import EntityType, Side
from engine.resolve import Choice, resolve
from engine.runner import RunStats
from engine.settings import load_config
from engine.state import Role
from engine.web.serve import free_port, serving
from examples.invoicing import MAPPING, create_example_db
from examples.invoicing.actions import add_customer, add_invoice, row
from examples.invoicing.edit import edit_record
from ledgersync.bootstrap import SECTIONS, Runtime

C, INV = EntityType.CUSTOMER, EntityType.INVOICE
CONFIG = """\
# Written by `ledgersync demo`: the embedded defaults plus the emulator and the example app.
state_url: sqlite:///state.db
secret_key: {{env: LEDGERSYNC_SECRET_KEY}}
quickbooks:
  environment: {qbo}
  client_id: {client_id}
  client_secret: {{env: QBO_CLIENT_SECRET}}
  webhook_verifier_token: {{env: QBO_WEBHOOK_VERIFIER}}
  defaults:
    income_account: "1"
    # The emulated company is on Automated Sales Tax (QuickBooks computes the tax itself); its tax
    # codes and currencies are read from it, so an invoice naming one it lacks is refused before sending.
    automated_sales_tax: true
    read_company: true
app:
  database_url: {app}
  mapping: {mapping}
web:
  port: {web_port}
"""
#: With `--keep`: the values the config's `{env: ...}` references need, for using the directory again.
ENV_FILE = "ledgersync.env"
#: The review console's login the demo makes (an admin); its password is new each run.
CONSOLE_LOGIN = "demo"
#: With `--keep`: the emulated company, saved after every change (`ledgersync emulator --state`).
EMULATOR_STATE = "quickbooks.json"


@dataclass
class Story:
    """The demo's world and its narrator."""

    qbo: EmulatorHandle
    runtime: Runtime
    app_url: str
    say: Callable[[str], None]
    step: Callable[[str], None]
    #: The review console's address while the demo plays, and the password of its login.
    console: str = ""
    password: str = ""
    writes: int = 0
    webhooks_read: int = 0

    def sync(self) -> RunStats:
        """What the workers do between two looks: read webhooks and both sides, decide, write."""
        inbox = self.runtime.ingest_webhooks()
        self.webhooks_read += inbox.entries - len(inbox.failed)
        notified = inbox.events
        stats = self.runtime.runner().run_until_quiet()
        self.writes += stats.applied
        read, wrote, conflicts = stats.captured + notified, stats.applied, stats.conflicts
        self.say(f"  sync: {read} change(s) read, {wrote} write(s), {conflicts} conflict(s)")
        return stats

    def qbo_id(self, entity: EntityType, app_id: int) -> str:
        with self.runtime.store.session() as s:
            link = s.find_link(self.runtime.connection, entity, Side.APP, str(app_id))
        if link is None or link.quickbooks_id is None:
            raise RuntimeError(f"{entity} {app_id} did not reach QuickBooks")
        return link.quickbooks_id

    def app_id(self, entity: EntityType, qbo_id: str) -> int:
        with self.runtime.store.session() as s:
            link = s.find_link(self.runtime.connection, entity, Side.QUICKBOOKS, qbo_id)
        if link is None or link.app_id is None:
            raise RuntimeError(f"{entity} {qbo_id} did not reach the app")
        return int(link.app_id)

    def delivered(self) -> int:
        """Webhook bodies QuickBooks has delivered to our receiver so far."""
        with self.runtime.store.session() as s:
            return self.webhooks_read + len(s.inbox_pending(10_000))

    def settle_webhooks(self, seconds: float = 10.0) -> None:
        """Wait until QuickBooks has no notification left to send, then read what came."""
        deadline = time.monotonic() + seconds
        while self.qbo.webhook_deliveries()["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
        self.sync()

    def wait_for_webhook(self, before: int, seconds: float) -> bool:
        """Whether a new webhook body arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.delivered() > before:
                return True
            time.sleep(0.1)
        return False


@dataclass(frozen=True)
class Sandbox:
    """A running emulator, the example app's database, and a ledgersync.yaml wired to both."""

    qbo: EmulatorHandle
    app_url: str
    config_path: Path
    #: What the config's `{env: ...}` references need (the secret key, QuickBooks' secrets).
    environ: dict[str, str]
    web_port: int
    emulator: EmulatorConfig

    def reuse_instructions(self, workdir: Path) -> str:
        """How to start this sandbox's emulator again on its saved state and use the kept config."""
        emulator, port = self.emulator, self.qbo.base_url.rsplit(":", 1)[1]
        return "\n".join(
            [
                f"Kept in {workdir}: ledgersync.yaml, state.db (ledgersync's state), app.db (the example",
                f"app), {EMULATOR_STATE} (the emulated company) and {ENV_FILE} (the secret key and",
                "QuickBooks secrets the config refers to; keep it private). To use them again:",
                f"  cd {workdir} && set -a && . ./{ENV_FILE} && set +a",
                f"  ledgersync emulator --port {port} --state {EMULATOR_STATE} --realm {emulator.realm_id}"
                f' --client-id {emulator.client_id} --client-secret "$QBO_CLIENT_SECRET"'
                f' --verifier-token "$QBO_WEBHOOK_VERIFIER" --webhook-url {emulator.webhook_url} &',
                "  ledgersync --config ledgersync.yaml status     # or sync, conflicts list, run",
                f"  ledgersync --config ledgersync.yaml web &      # http://localhost:{self.web_port}/",
                f"  (the review console: sign in as {CONSOLE_LOGIN}, password $LEDGERSYNC_CONSOLE_PASSWORD)",
            ]
        )


@contextmanager
def sandbox(
    workdir: Path, emulator: EmulatorConfig | None = None, *, keep: bool = False
) -> Iterator[Sandbox]:
    """Start the emulator (webhooks to 127.0.0.1:`web_port`), create the example app, write the config.

    `keep`: the directory is left usable: the emulated company is saved in it and the secrets the
    config refers to are written to `ledgersync.env` (readable by its owner only).
    """
    app_url = f"sqlite:///{workdir / 'app.db'}"
    create_example_db(app_url)
    port = free_port()
    settings = replace(
        emulator or EmulatorConfig(profile=CompanyProfile.us_automated_sales_tax()),
        webhook_url=f"http://127.0.0.1:{port}/webhooks/quickbooks",
        state_file=workdir / EMULATOR_STATE if keep else None,
    )
    with running_emulator(settings) as qbo:
        config_path = workdir / "ledgersync.yaml"
        config_path.write_text(
            CONFIG.format(
                qbo=qbo.base_url, client_id=qbo.client_id, app=app_url, mapping=MAPPING, web_port=port
            ),
            encoding="utf-8",
        )
        environ = {
            "LEDGERSYNC_SECRET_KEY": generate_key(),
            "QBO_CLIENT_SECRET": qbo.client_secret,
            "QBO_WEBHOOK_VERIFIER": settings.verifier_token,
            "LEDGERSYNC_CONSOLE_PASSWORD": secrets.token_urlsafe(12),
        }
        if keep:
            env_file = workdir / ENV_FILE
            env_file.touch(mode=0o600)
            env_file.write_text(
                "".join(f"{k}={shlex.quote(v)}\n" for k, v in environ.items()), encoding="utf-8"
            )
        yield Sandbox(qbo, app_url, config_path, environ, port, settings)


def run_demo(
    workdir: Path, say: Callable[[str], None], step: Callable[[str], None], *, keep: bool = False
) -> int:
    """Play the story in `workdir`; returns how many synced fields differ at the end (0: converged).

    `keep`: leave `workdir` usable afterwards, and say how."""
    with sandbox(workdir, keep=keep) as box:
        qbo, app_url, port = box.qbo, box.app_url, box.web_port
        runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
        try:
            with serving(runtime.web_app(), port=port) as base:
                password = box.environ["LEDGERSYNC_CONSOLE_PASSWORD"]
                story = Story(qbo, runtime, app_url, say, step, base, password)
                _play(story)
                differing = _compare(story)
        finally:
            runtime.close()
        if keep:
            instructions = box.reuse_instructions(workdir)
            (workdir / "README.txt").write_text(instructions + "\n", encoding="utf-8")
            say(instructions)
        return differing


def console_page(base: str, login: str, password: str, path: str) -> str:
    """Sign in to the review console as a browser does, then read one of its pages (its text)."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with browser.open(f"{base}/login", timeout=30) as answer:
        page = answer.read().decode()
    token = re.search(r'name="token" value="([0-9a-f]+)"', page)
    form = {"token": token.group(1) if token else "", "login": login, "password": password, "next": path}
    with browser.open(f"{base}/login", urllib.parse.urlencode(form).encode(), timeout=30) as answer:
        return str(answer.read().decode())


def _play(story: Story) -> None:
    runtime, qbo, say = story.runtime, story.qbo, story.say

    story.step("Connect to QuickBooks (OAuth; the emulator consents by itself)")
    oauth = runtime.oauth()
    request = oauth.authorization_request()
    stored = runtime.custodian().connect(
        runtime.connection, oauth.exchange_code(oauth.consent_automatically(request))
    )
    say(f"  connected to company {stored.realm_id}; tokens stored encrypted")
    with runtime.store.session() as s:
        add_user(s, CONSOLE_LOGIN, Role.ADMIN, story.password, runtime.clock.now())
    say(f"  the review console: {story.console}/ (sign in as {CONSOLE_LOGIN}, password {story.password})")

    story.step("Backfill: link what exists on both sides, then copy the app's records to QuickBooks")
    matched = runtime.match()
    say(f"  {sum(len(v) for v in matched.linked.values())} record pair(s) already on both sides were linked")
    story.sync()
    client = runtime.quickbooks_connector(runtime.connection).client
    for name in ("Customer", "Item", "Invoice", "Payment"):
        count = client.count(f"SELECT COUNT(*) FROM {name}")  # noqa: S608 - names from the tuple above
        say(f"  QuickBooks now has {count} {name.lower()}(s)")

    story.step("A customer created in the app appears in QuickBooks")
    customer = add_customer(
        story.app_url,
        display_name="Kai Nakamura-Ortiz",
        first_name="Kai",
        last_name="Nakamura-Ortiz",
        email="kai@nakamura-design.example",
        phone="555-010-4242",
        city="Portland",
        region="OR",
        country="USA",
    )
    story.sync()
    qbo_customer = story.qbo_id(C, customer)
    say(f"  QuickBooks customer {qbo_customer}: {qbo.read_record('Customer', qbo_customer)['DisplayName']}")

    story.step("The accountant changes that customer's phone in QuickBooks; it reaches the app")
    before = story.delivered()
    qbo.edit_record("Customer", qbo_customer, {"PrimaryPhone": {"FreeFormNumber": "(555) 010-7777"}})
    arrived = story.wait_for_webhook(before, seconds=5)
    say("  QuickBooks' webhook arrived (signature checked, body stored)" if arrived else "  no webhook yet")
    story.sync()
    say(f"  the app's phone for customer {customer} is now {_cell(story, 'customers', customer, 'phone')}")

    story.step("Both sides change the same e-mail at once: a conflict for a person to decide")
    edit_record(story.app_url, "customer", customer, {"email": "kai@new-studio.example"})
    qbo.edit_record(
        "Customer", qbo_customer, {"PrimaryEmailAddr": {"Address": "billing@nakamura-design.example"}}
    )
    story.sync()
    with runtime.store.session() as s:
        (conflict,) = [c for c in s.list_conflicts(runtime.connection) if c.field == "email"]
        say(f"  conflict #{conflict.id} on email: app {conflict.app!r}, QuickBooks {conflict.quickbooks!r}")
    listed = console_page(story.console, CONSOLE_LOGIN, story.password, "/conflicts")
    shown = "lists it" if "billing@nakamura-design.example" in listed else "does not list it"
    say(f"  the review console, signed in as {CONSOLE_LOGIN}, {shown} at {story.console}/conflicts")
    with runtime.store.session() as s:
        resolve(
            s, conflict.id, Choice(take=Side.QUICKBOOKS), "demo reviewer", runtime.policy, runtime.clock.now()
        )
    say("  the reviewer keeps QuickBooks' address (`ledgersync conflicts resolve ID --take quickbooks`)")
    story.sync()
    say(f"  the app's e-mail is now {_cell(story, 'customers', customer, 'email')}")

    _money_and_faults(story, customer, qbo_customer)


def _money_and_faults(story: Story, customer: int, qbo_customer: str) -> None:
    qbo, say = story.qbo, story.say
    story.step("An invoice made in the app goes to QuickBooks, which computes its sales tax and total")
    invoice = add_invoice(
        story.app_url,
        customer,
        "D-2001",
        issued_on=date(2026, 11, 20),
        lines=[
            {"item_id": 1, "description": "Brand workshop", "quantity": 3, "unit_price": "120.00"},
            {
                "item_id": 2,
                "description": "Printed proofs",
                "quantity": 2,
                "unit_price": "18.50",
                "taxable": True,
            },
        ],
    )
    story.sync()
    qbo_invoice = story.qbo_id(INV, invoice)
    booked = qbo.read_record("Invoice", qbo_invoice)
    total, tax = Decimal(str(booked["TotalAmt"])), Decimal(str(booked["TxnTaxDetail"]["TotalTax"]))
    shown = _cell(story, "invoices", invoice, "total")
    say(f"  QuickBooks invoice {qbo_invoice} totals {total} with {tax} sales tax (8% of the taxable line)")
    say(f"  the app shows total {shown}, tax {_cell(story, 'invoices', invoice, 'tax_amount')}")

    story.step("The accountant records the customer's payment in QuickBooks; the app shows the invoice paid")
    qbo.create_record(
        "Payment",
        {
            "CustomerRef": {"value": qbo_customer},
            "TotalAmt": float(total),
            "Line": [{"Amount": float(total), "LinkedTxn": [{"TxnId": qbo_invoice, "TxnType": "Invoice"}]}],
        },
    )
    story.sync()
    say(f"  the app's invoice {invoice} balance: {_cell(story, 'invoices', invoice, 'balance')}")

    story.step(
        "An hour passes in QuickBooks: the access token expires; ledgersync refreshes it and carries on"
    )
    qbo.advance_clock(3700)
    qbo.edit_record("Customer", qbo_customer, {"Notes": "Prefers e-mail after 5 pm"})
    story.sync()
    say(f"  the app's notes: {_cell(story, 'customers', customer, 'notes')!r}")

    story.step("A webhook is lost on the way; the change-data-capture poll still finds the change")
    story.settle_webhooks()  # earlier notifications first, so the next one is the one lost
    qbo.inject_fault("webhook_drop")
    before = story.delivered()
    qbo.edit_record("Customer", qbo_customer, {"CompanyName": "Nakamura & Ortiz Design"})
    arrived = story.wait_for_webhook(before, seconds=2)
    say(
        "  a webhook arrived after all"
        if arrived
        else "  no webhook arrived: QuickBooks' notification was lost"
    )
    story.sync()
    say(f"  the app's company name: {_cell(story, 'customers', customer, 'company')!r}")


def _cell(story: Story, table: str, record_id: int, column: str) -> Any:
    found = row(story.app_url, table, record_id)
    return None if found is None else found[column]


def _compare(story: Story) -> int:
    runtime = story.runtime
    story.step("Both sides, field by field")
    sides = runtime.sides(runtime.connection)
    differing = 0
    with runtime.store.session() as s:
        links = [link for link in s.list_links(runtime.connection) if link.app_id and link.quickbooks_id]
        open_fields = {(c.link_id, c.field) for c in s.list_conflicts(runtime.connection)}
        for link in links:
            assert link.app_id is not None and link.quickbooks_id is not None
            app = sides[Side.APP].fetch(link.entity, link.app_id)
            qbo = sides[Side.QUICKBOOKS].fetch(link.entity, link.quickbooks_id)
            diff = differing_fields(s, link, app.fields, qbo.fields, runtime.policy)
            diff = frozenset(f for f in diff if (link.id, f) not in open_fields)
            differing += len(diff)
            marker = "same on both sides" if not diff else "DIFFERENT: " + ", ".join(sorted(diff))
            story.say(
                f"  {link.entity:<8} app {link.app_id:>3} = QuickBooks {link.quickbooks_id:>3}: {marker}"
            )
    story.say(f"  {len(links)} linked records, {differing} differing field(s), {story.writes} writes in all")
    return differing
