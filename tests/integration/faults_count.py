"""The campaign's verdict, read from both sides by the test itself and not through ledgersync: QuickBooks
through the emulator's control API and request log, the app through its own tables and the history its
triggers kept, the review queue through the web app's JSON API.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from engine.model import Side
from tests.integration import app_history
from tests.integration.campaign import APP_COLUMNS, Edit, Log, quickbooks_value
from tests.integration.faults_world import Campaign
from tests.integration.harness import API_TOKEN

#: A DisplayName QuickBooks refused as taken gets " (2)" from the `suffix` policy: the same name twice.
SUFFIX = re.compile(r" \(\d+\)$")


def same(name: str, a: Any, b: Any) -> bool:
    """Equal as the users mean it: blank is absent, whitespace runs are one, e-mail ignores case, a phone
    is its digits."""

    def plain(value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        text = " ".join(str(value).split())
        if name == "phone":
            return re.sub(r"\D", "", text)
        return text.casefold() if name == "email" else text

    return plain(a) == plain(b)


@dataclass
class Verdict:
    duplicates: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    lost_updates: list[str] = field(default_factory=list)
    echo_writes: list[str] = field(default_factory=list)
    #: Context for the report: writes seen on each side.
    writes: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "duplicates": len(self.duplicates),
            "missing": len(self.missing),
            "lost_updates": len(self.lost_updates),
            "echo_writes": len(self.echo_writes),
        }


def judge(campaign: Campaign, log: Log) -> Verdict:
    verdict = Verdict()
    qbo = campaign.world.qbo
    customers = qbo.list_records("Customer")
    invoices = qbo.list_records("Invoice")
    app = app_customers(campaign.world.app_url)
    app_numbers = app_invoice_numbers(campaign.world.app_url)
    verdict.duplicates = duplicates(customers, invoices)
    verdict.missing = missing(app, app_numbers, customers, invoices)
    by_name = {SUFFIX.sub("", str(c["DisplayName"])): c for c in customers}
    conflicts = open_conflicts(campaign.web_url)
    verdict.lost_updates = lost_updates(log, app, by_name, conflicts)
    verdict.echo_writes, verdict.writes = echo_writes(campaign)
    return verdict


def app_customers(app_url: str) -> dict[int, dict[str, Any]]:
    columns = ", ".join(["id", "display_name", *APP_COLUMNS.values()])
    engine = sa.create_engine(app_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT {columns} FROM customers").mappings().all()
    finally:
        engine.dispose()
    return {int(r["id"]): dict(r) for r in rows}


def app_invoice_numbers(app_url: str) -> list[str]:
    engine = sa.create_engine(app_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return [str(n) for n in conn.exec_driver_sql("SELECT number FROM invoices").scalars()]
    finally:
        engine.dispose()


def duplicates(customers: list[dict[str, Any]], invoices: list[dict[str, Any]]) -> list[str]:
    """Customers with the same DisplayName (less a suffix the sync added), invoices with the same
    DocNumber: each copy past the first is one duplicate."""
    found = []
    names = Counter(SUFFIX.sub("", str(c["DisplayName"])).casefold() for c in customers)
    found += [f"customer {name!r} {n} times" for name, n in names.items() for _ in range(n - 1)]
    numbers = Counter(str(i.get("DocNumber")) for i in invoices)
    found += [f"invoice {number!r} {n} times" for number, n in numbers.items() for _ in range(n - 1)]
    return found


def missing(
    app: dict[int, dict[str, Any]],
    app_numbers: list[str],
    customers: list[dict[str, Any]],
    invoices: list[dict[str, Any]],
) -> list[str]:
    """Records of the app that QuickBooks does not have (a lost create)."""
    names = {SUFFIX.sub("", str(c["DisplayName"])).casefold() for c in customers}
    numbers = {str(i.get("DocNumber")) for i in invoices}
    lost = [
        f"customer {r['display_name']!r}" for r in app.values() if r["display_name"].casefold() not in names
    ]
    return lost + [f"invoice {n!r}" for n in app_numbers if n not in numbers]


def open_conflicts(web_url: str) -> dict[tuple[int, str], tuple[Any, Any]]:
    """(app customer id, field) -> (app value, QuickBooks value) of every open conflict, from the web
    app's review API."""
    answer = httpx.get(
        f"{web_url}/api/conflicts", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
    )
    answer.raise_for_status()
    return {
        (int(c["app_id"]), str(c["field"])): (c["app"], c["quickbooks"])
        for c in answer.json()
        if c.get("entity") == "customer" and c.get("app_id") is not None and c.get("status") == "open"
    }


def expected(name: str, by_side: dict[Side, Edit]) -> list[str]:
    """The values the field may end with. An edit made after its side already showed the other side's
    last edit came later in every sense and must win; edits that crossed may end either way (the
    field's conflict rule decides)."""
    edits = sorted(by_side.values(), key=lambda e: e.at)
    later = edits[-1]
    if len(edits) == 1 or same(name, later.prior, edits[0].value):
        return [later.value]
    return [e.value for e in edits]


def lost_updates(
    log: Log,
    app: dict[int, dict[str, Any]],
    qbo_by_name: dict[str, dict[str, Any]],
    conflicts: dict[tuple[int, str], tuple[Any, Any]],
) -> list[str]:
    """Every edited field is on both sides with the value it should end with, or in the review queue
    showing one of the values the users wrote."""
    problems = []
    for (app_id, name), by_side in sorted(log.last.items()):
        allowed = expected(name, by_side)
        written = [e.value for e in by_side.values()]
        label = f"customer {app_id}.{name}"
        if (app_id, name) in conflicts:
            shown = conflicts[(app_id, name)]
            if not any(same(name, v, w) for v in shown for w in written):
                problems.append(f"{label}: the conflict shows {shown}, none of {written}")
            continue
        ours = app[app_id][APP_COLUMNS[name]]
        customer = qbo_by_name.get(log.names[app_id])
        theirs = quickbooks_value(customer, name) if customer else None
        if not same(name, ours, theirs):
            problems.append(f"{label}: app {ours!r} != QuickBooks {theirs!r} (written {written})")
        elif not any(same(name, ours, v) for v in allowed):
            problems.append(f"{label}: both sides hold {ours!r}, not {allowed} (written {written})")
    return problems


def echo_writes(campaign: Campaign) -> tuple[list[str], dict[str, int]]:
    """Writes that restated what their side already had: QuickBooks updates that changed no field (the
    emulator's request log) and app versions equal to the one before (the app's history)."""
    entries = campaign.world.qbo.request_log(entries=True)["entries"]
    writes = [e for e in entries if e["record"] is not None and e["changed"] is not None]
    found = [f"QuickBooks {e['path']} ({e['record']}) changed nothing" for e in writes if not e["changed"]]
    history = app_history.versions(campaign.world.app_url)
    found += [
        f"app {v.table} {v.record_id} version {v.version} changed nothing"
        for v in app_history.unchanged_writes(history)
    ]
    ours = sum(1 for v in history if v.changed_by == "ledgersync")
    return found, {"quickbooks": len(writes), "app": ours}
