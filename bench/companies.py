"""Many companies in one deployment (issue 14): K emulated companies, one app database shared by K tenants
(`tenant_column`), and a distributed ledgersync (worker processes, the scheduler, the web app receiving
every company's webhooks; PostgreSQL and Redis) serving them all.

Each tenant has `customers` rows in the app and its company one customer of its own; each tenant is
connected to its own company (`ledgersync connect --tenant T --realm R`), then the processes start and
the first sync must bring every company and tenant together. Then two phases of edits of the same
length: a baseline, and one while the first company ("the stormed one") answers every call with a 429
(from the phase's first edit until every edit arrived). In each, edits go one every `gap` seconds
(`storm_seconds` over the phase's edits), alternating app -> QuickBooks (a customer's notes, by UPDATE)
and QuickBooks -> app (its Notes, by the emulator's control API, which sends the webhook), round-robin
over the quiet companies; every fourth edit goes to the stormed company besides, and is not measured. A
sample ends when the other side shows the value (watched every `WATCH` seconds from outside, only the
records still awaited). At the end every company must converge: per tenant, the app's customers and the
company's hold the same names and notes, and no record sits in another tenant's rows or company.

The baseline starts once the start's work is done (the workers' queue drained): with 200 companies
the first polls of every connection are thousands of messages, and the steady state is what is
compared.

The bar (issue 14): the quiet companies' p99 during the storm within 2x of their p99 without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.emulator_proc import proc_cpu_seconds
from bench.latency import percentile
from bench.live import Live, serving
from bench.report import Figure, at_least, at_most, figure
from bench.world import Places, World, world
from connectors.app.codec import Codec
from connectors.app.database import make_engine
from connectors.quickbooks.emulator import CompanyHandle

WATCH = 0.05
BAR = 2.0
#: The directions, as the figures name them.
TO_QBO, TO_APP = "app -> QuickBooks", "QuickBooks -> app"


@dataclass(frozen=True)
class Sizes:
    companies: int = 200
    #: App customers per tenant (its company starts with one customer of its own besides).
    customers: int = 2
    #: Measured edits per direction in each phase.
    samples: int = 100
    storm_seconds: float = 60.0
    workers: int = 2
    threads: int = 4
    #: Also a phase while the stormed company is disconnected (then reconnected).
    disconnected: bool = True
    #: How long the first sync, and the convergence at the end, may take.
    timeout: float = 600.0


def tenant_name(n: int) -> str:
    return f"t{n:03d}"


@dataclass
class Tenant:
    name: str
    company: CompanyHandle
    #: (app id, QuickBooks id) of each linked customer, by display name order.
    pairs: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Edit:
    direction: str
    tenant: Tenant
    app_id: int
    qbo_id: str
    value: str
    sent: float
    measured: bool
    arrived: float | None = None


class Fleet:
    """The tenants, their companies and the app database, watched from outside."""

    def __init__(self, live: Live, tenants: list[Tenant]) -> None:
        self.live = live
        self.tenants = tenants
        self.app = make_engine(live.world.app_url)
        self.codec = Codec(self.app.dialect.name)
        self.loads: list[float] = []
        #: The most messages the workers' queue held while edits were measured.
        self.most_queued = 0
        #: (seconds since the first phase began, messages queued, load average), every two seconds.
        self.timeline: list[tuple[float, int, float]] = []
        self.started = time.perf_counter()

    def close(self) -> None:
        self.app.dispose()

    def app_rows(self) -> dict[str, dict[str, str]]:
        """Tenant -> display name -> notes ("" for none), every customer row."""
        rows: dict[str, dict[str, str]] = {}
        with self.app.connect() as conn:
            found = conn.execute(sa.text("SELECT account_id, display_name, notes FROM customers"))
            for tenant, name, notes in found:
                rows.setdefault(str(tenant), {})[str(name)] = str(notes or "")
        return rows

    def app_ids(self) -> dict[tuple[str, str], int]:
        with self.app.connect() as conn:
            found = conn.execute(sa.text("SELECT id, account_id, display_name FROM customers"))
            return {(str(t), str(n)): int(i) for i, t, n in found}

    def quickbooks_rows(self, tenant: Tenant) -> dict[str, tuple[str, str]]:
        """Display name -> (QuickBooks id, Notes) of the company's customers."""
        return {
            str(c["DisplayName"]): (str(c["Id"]), str(c.get("Notes") or ""))
            for c in tenant.company.list_records("Customer")
        }

    def apart(self) -> tuple[int, int]:
        """(tenants whose rows and company agree, records in another tenant's rows or company)."""
        app = self.app_rows()
        agreed = crossing = 0
        for tenant in self.tenants:
            books = {name: notes for name, (_, notes) in self.quickbooks_rows(tenant).items()}
            mine = app.get(tenant.name, {})
            crossing += sum(not name.startswith(tenant.name + " ") for name in [*books, *mine])
            agreed += books == mine and len(mine) > 0
        return agreed, crossing

    def wait_converged(self, timeout: float) -> tuple[int, int, float]:
        """Until every company agrees with its tenant (or `timeout`): (agreed, crossing, seconds)."""
        started = time.monotonic()
        while True:
            self.live.check_alive()
            agreed, crossing = self.apart()
            took = time.monotonic() - started
            if agreed == len(self.tenants) or took > timeout:
                return agreed, crossing, took
            time.sleep(1.0)

    def pair_up(self) -> None:
        ids = self.app_ids()
        for tenant in self.tenants:
            books = self.quickbooks_rows(tenant)
            tenant.pairs = [(ids[(tenant.name, name)], books[name][0]) for name in sorted(books)]

    def edit(self, edit: Edit) -> None:
        if edit.direction == TO_QBO:
            stamp = self.codec.write_timestamp(datetime.now(UTC))
            with self.app.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE customers SET notes = :notes, version = version + 1, updated_at = :at,"
                        " changed_by = 'user' WHERE id = :id"
                    ),
                    {"notes": edit.value, "at": stamp, "id": edit.app_id},
                )
        else:
            edit.tenant.company.edit_record("Customer", edit.qbo_id, {"Notes": edit.value})

    def arrived(self, pending: list[Edit]) -> None:
        """Stamp the edits of `pending` the other side now shows."""
        now = time.perf_counter()
        to_app = [e for e in pending if e.direction == TO_APP]
        if to_app:
            with self.app.connect() as conn:
                ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
                found = conn.execute(
                    sa.text("SELECT id, notes FROM customers WHERE id IN :ids").bindparams(ids),
                    {"ids": [e.app_id for e in to_app]},
                )
                notes = {int(i): n for i, n in found}
            for e in to_app:
                if notes.get(e.app_id) == e.value:
                    e.arrived = now
        for e in pending:
            if e.direction == TO_QBO and e.tenant.company.read_record("Customer", e.qbo_id).get("Notes") == (
                e.value
            ):
                e.arrived = now

    def phase(self, name: str, samples: int, gap: float, stormed: Tenant) -> list[Edit]:
        """2 x `samples` measured edits, one per `gap`, over the quiet tenants (and every fourth tick
        one of the stormed tenant's, unmeasured); each stamped when it arrived."""
        quiet = [t for t in self.tenants if t is not stormed]
        edits: list[Edit] = []
        done = threading.Event()

        def watch() -> None:
            last_load = 0.0
            while not done.is_set():
                pending = [e for e in edits if e.arrived is None]
                if pending:
                    self.arrived(pending)
                if time.monotonic() - last_load > 2:
                    load, queued = os.getloadavg()[0], self.live.queued()
                    self.loads.append(load)
                    self.most_queued = max(self.most_queued, queued)
                    self.timeline.append((time.perf_counter() - self.started, queued, load))
                    last_load = time.monotonic()
                time.sleep(WATCH)

        def make(n: int, direction: str, tenant: Tenant, measured: bool) -> Edit:
            # Customer 0 takes the app's edits, the last one QuickBooks' (never one record from both).
            app_id, qbo_id = tenant.pairs[0 if direction == TO_QBO else -1]
            value = f"{name} {n} {direction[:3]}"
            return Edit(direction, tenant, app_id, qbo_id, value, time.perf_counter(), measured)

        watcher = threading.Thread(target=watch, name="companies-watch", daemon=True)
        watcher.start()
        try:
            for n in range(2 * samples):
                direction = TO_QBO if n % 2 == 0 else TO_APP
                one = make(n, direction, quiet[(n // 2) % len(quiet)], measured=True)
                self.edit(one)
                edits.append(one)
                if n % 4 == 0:
                    extra = make(n, TO_APP if n % 8 else TO_QBO, stormed, measured=False)
                    self.edit(extra)
                    edits.append(extra)
                time.sleep(gap)
            deadline = time.monotonic() + 120
            while any(e.arrived is None for e in edits if e.measured) and time.monotonic() < deadline:
                self.live.check_alive()
                time.sleep(0.2)
        finally:
            done.set()
            watcher.join(timeout=5)
        lost = sum(e.arrived is None for e in edits if e.measured)
        if lost:
            raise RuntimeError(f"{lost} of {2 * samples} measured {name} edits never arrived")
        return edits


def seed(w: World, tenants: list[Tenant], customers: int) -> None:
    """The tenants' app rows (as the app writes them) and one customer in each company."""
    from tests.support.tenants import create_tenant_db

    create_tenant_db(w.app_url)
    engine = make_engine(w.app_url)
    stamp = Codec(engine.dialect.name).write_timestamp(datetime.now(UTC))
    rows = [
        {
            "display_name": f"{t.name} App {n}",
            "account_id": t.name,
            "version": 1,
            "updated_at": stamp,
            "changed_by": "user",
        }
        for t in tenants
        for n in range(customers)
    ]
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO customers (display_name, account_id, version, updated_at, changed_by)"
                    " VALUES (:display_name, :account_id, :version, :updated_at, :changed_by)"
                ),
                rows,
            )
    finally:
        engine.dispose()
    for t in tenants:
        t.company.create_record("Customer", {"DisplayName": f"{t.name} Books"})


def connect_all(w: World, tenants: list[Tenant]) -> None:
    for t in tenants:
        code, output = w.cli("connect", "--tenant", t.name, "--realm", t.company.realm_id)
        if code != 0:
            raise RuntimeError(f"ledgersync connect --tenant {t.name} exited {code}: {output[-2000:]}")


@contextlib.contextmanager
def deployment(sizes: Sizes, places: Places | None) -> Iterator[Fleet]:
    from tests.support.tenants import tenant_mapping

    with contextlib.ExitStack() as stack:
        mapping = tenant_mapping(Path(stack.enter_context(tempfile.TemporaryDirectory())))
        w = stack.enter_context(
            world(
                "postgres",
                broker=True,
                webhooks=True,
                create_app=False,
                companies=sizes.companies,
                mapping=mapping,
                places=places,
            )
        )
        handles = w.qbo.company_handles()[: sizes.companies]
        tenants = [Tenant(tenant_name(n), company) for n, company in enumerate(handles)]
        seed(w, tenants, sizes.customers)
        connect_all(w, tenants)
        live = stack.enter_context(serving(Live(w, {}, "distributed"), sizes.workers, sizes.threads))
        fleet = Fleet(live, tenants)
        stack.callback(fleet.close)
        yield fleet


def _cpu(live: Live) -> float:
    return sum(proc_cpu_seconds(p.pid) for p in live.processes if p.poll() is None)


def keep(path: Path, fleet: Fleet, phases: dict[str, list[Edit]]) -> None:
    """Every sample (phase, direction, tenant, sent and latency in seconds) and the queue's timeline."""
    samples = [
        {
            "phase": phase,
            "direction": e.direction,
            "tenant": e.tenant.name,
            "measured": e.measured,
            "sent": round(e.sent - fleet.started, 3),
            "latency": None if e.arrived is None else round(e.arrived - e.sent, 3),
        }
        for phase, edits in phases.items()
        for e in edits
    ]
    timeline = [{"at": round(t, 1), "queued": q, "load": round(load, 2)} for t, q, load in fleet.timeline]
    path.write_text(json.dumps({"samples": samples, "timeline": timeline}, indent=1), encoding="utf-8")


@dataclass
class Run:
    """What one run measured."""

    #: Seconds until every company converged after the start.
    first: float = 0.0
    #: The edits of each phase, in order.
    phases: dict[str, list[Edit]] = field(default_factory=dict)
    #: Per phase: (ledgersync CPU seconds, wall seconds).
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    agreed: int = 0
    crossing: int = 0
    notes: list[str] = field(default_factory=list)
    cpu_all: float = 0.0
    emulator_cpu: float = 0.0
    took: float = 0.0


def run(sizes: Sizes, places: Places | None = None, samples_file: Path | None = None) -> tuple[Run, Fleet]:
    started = time.monotonic()
    gap = sizes.storm_seconds / (2 * sizes.samples)
    done = Run()
    with deployment(sizes, places) as fleet:
        live = fleet.live
        agreed, _, done.first = fleet.wait_converged(sizes.timeout)
        if agreed < len(fleet.tenants):
            raise RuntimeError(f"the first sync brought {agreed} of {len(fleet.tenants)} companies together")
        fleet.pair_up()
        # The start sends every connection's first polls at once; the baseline is the steady state.
        live.wait_drained(timeout=sizes.timeout)
        stormed = fleet.tenants[0]
        fleet.started = time.perf_counter()

        def phase(name: str) -> None:
            cpu0, wall0 = _cpu(live), time.monotonic()
            done.phases[name] = fleet.phase(name, sizes.samples, gap, stormed)
            done.cpu[name] = (_cpu(live) - cpu0, time.monotonic() - wall0)

        phase("baseline")
        # Armed for longer than the phase lasts (its edits, then their arrival); cleared after it.
        stormed.company.storm(sizes.storm_seconds + 300)
        phase("storm")
        fired = stormed.company.faults().get("fired", {})
        stormed.company.clear_faults()
        done.agreed, done.crossing, settled = fleet.wait_converged(sizes.timeout)
        done.notes.append(f"{settled:.1f} s after the storm (the stormed company answered {fired} 429s)")
        if sizes.disconnected:
            # The same company's admin clicks Disconnect in QuickBooks; its tenant reconnects after.
            stormed.company.disconnect()
            phase("disconnected")
            connect_all(live.world, [stormed])
            done.agreed, done.crossing, settled = fleet.wait_converged(sizes.timeout)
            done.notes.append(f"{settled:.1f} s after it reconnected")
        done.cpu_all = _cpu(live)
        done.emulator_cpu = live.world.qbo.cpu_seconds()
        if samples_file is not None:
            keep(samples_file, fleet, done.phases)
    done.took = time.monotonic() - started
    return done, fleet


def measure(sizes: Sizes, places: Places | None = None, samples_file: Path | None = None) -> list[Figure]:
    done, fleet = run(sizes, places, samples_file)
    group = f"companies {sizes.companies}"
    loads = fleet.loads or [os.getloadavg()[0]]
    out = [
        figure(
            group,
            "first sync: every company converged in",
            done.first,
            "s",
            note=f"{sizes.companies} tenants x {sizes.customers} app customers + 1 QuickBooks customer each",
        )
    ]
    for direction in (TO_QBO, TO_APP, "both ways"):
        values = {}
        for name, edits in done.phases.items():
            mine = [e for e in edits if e.measured and direction in (e.direction, "both ways")]
            values[name] = [float(e.arrived - e.sent) for e in mine if e.arrived is not None]
            v = values[name]
            note = f"{len(v)} samples, mean {statistics.fmean(v):.2f} s, max {max(v):.2f} s"
            out.append(figure(group, f"quiet, {direction}, {name} p50", percentile(v, 50), "s"))
            out.append(figure(group, f"quiet, {direction}, {name} p99", percentile(v, 99), "s", note=note))
        for name in [n for n in done.phases if n != "baseline"]:
            ratio = percentile(values[name], 99) / percentile(values["baseline"], 99)
            label = f"quiet, {direction}: {name} p99 / baseline p99"
            out.append(figure(group, label, ratio, "x", f"<= {BAR:g}x", at_most(BAR)))
    out.append(
        figure(
            group,
            "companies converged",
            done.agreed,
            "",
            f"= {sizes.companies}",
            at_least(sizes.companies),
            note="; ".join(done.notes),
        )
    )
    spent = ", ".join(f"{c:.0f} s {name} ({wall:.0f} s)" for name, (c, wall) in done.cpu.items())
    out.append(
        figure(
            group,
            "records in another tenant's rows or company",
            done.crossing,
            "",
            "= 0",
            at_most(0),
            note=(
                f"{done.took:.0f} s wall; ledgersync CPU {spent}, {done.cpu_all:.0f} s in all; emulator"
                f" {done.emulator_cpu:.0f} s; load average {statistics.fmean(loads):.1f} mean,"
                f" {max(loads):.1f} max; {len(os.sched_getaffinity(0))} cores; at most"
                f" {fleet.most_queued} messages queued while measuring"
            ),
        )
    )
    return out


def figures_of(args: Any) -> list[Figure]:
    sizes = Sizes(
        companies=args.companies,
        customers=args.customers,
        samples=args.samples,
        storm_seconds=args.storm_seconds,
        workers=args.workers,
        threads=args.threads,
        disconnected=not args.no_disconnected,
    )
    places = Places(port=args.port, redis_url=args.redis_url, schema_prefix=args.schema_prefix)
    return measure(sizes, places, args.samples_file)
