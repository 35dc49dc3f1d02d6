"""`ledgersync run`: the sync loop in one process on embedded defaults (SQLite, in-memory sides)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from engine.errors import ConfigurationError
from engine.model import EntityType, Side
from engine.runner import RunStats

console = Console()
errors = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    state_url: Annotated[
        str | None, typer.Option(help="State store URL (default: a SQLite file in a temporary directory).")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Policy file (default: the shipped policies/default.yaml).")
    ] = None,
) -> None:
    """Run the sync loop in-process over two in-memory sides seeded with a sample book, and show each step.

    The QuickBooks side here is the in-memory fake; the emulator and the real connector plug into the
    same runner.
    """
    from engine.bootstrap import in_process, load_policy_or_default
    from engine.sample import CUSTOMERS, ITEMS, invoice_for

    try:
        rules = load_policy_or_default(policy)
    except ConfigurationError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    with tempfile.TemporaryDirectory(prefix="ledgersync-") as tmp:
        url = state_url or f"sqlite:///{Path(tmp) / 'ledgersync.db'}"
        loop = in_process(url, rules)
        try:
            app_side, qbo = loop.app, loop.quickbooks
            console.rule("1. The app's customers, items and an invoice go to QuickBooks")
            customers = [app_side.create(EntityType.CUSTOMER, dict(c)) for c in CUSTOMERS]
            items = [app_side.create(EntityType.ITEM, dict(i)) for i in ITEMS]
            invoice = app_side.create(EntityType.INVOICE, invoice_for(customers[0], (items[0], items[1])))
            _step(loop.runner.run_until_quiet())
            qbo_customer = _counterpart(loop, EntityType.CUSTOMER, customers[0])
            qbo_invoice = _counterpart(loop, EntityType.INVOICE, invoice)
            total = qbo.get(EntityType.INVOICE, qbo_invoice)
            console.print(f"QuickBooks computed the invoice total: {total['total'] if total else '?'}")

            console.rule("2. The accountant changes a phone number in QuickBooks")
            qbo.edit(EntityType.CUSTOMER, qbo_customer, phone="555-010-9999")
            _step(loop.runner.run_until_quiet())
            app_record = app_side.get(EntityType.CUSTOMER, customers[0]) or {}
            console.print(f"The app now has phone {app_record.get('phone')!r}")

            console.rule("3. Both sides change the same e-mail at once")
            app_side.edit(EntityType.CUSTOMER, customers[0], email="amelie@new-bakery.example")
            qbo.edit(EntityType.CUSTOMER, qbo_customer, email="billing@obrien-bakery.example")
            _step(loop.runner.run_until_quiet())
            with loop.store.session() as s:
                for conflict in s.list_conflicts(open_only=True):
                    console.print(
                        f"conflict #{conflict.id} on {conflict.entity}.{conflict.field}: "
                        f"app={conflict.app!r} quickbooks={conflict.quickbooks!r}"
                    )

            console.rule("4. A payment recorded in QuickBooks reaches the app")
            amount = (total or {}).get("total") or "0"
            qbo.create(
                EntityType.PAYMENT,
                {
                    "customer": {"entity": EntityType.CUSTOMER, "id": qbo_customer},
                    "total": amount,
                    "applications": [
                        {"invoice": {"entity": EntityType.INVOICE, "id": qbo_invoice}, "amount": amount}
                    ],
                },
            )
            _step(loop.runner.run_until_quiet())
            paid = app_side.get(EntityType.INVOICE, invoice) or {}
            console.print(f"The app's invoice balance is now {paid.get('balance')}")
            _compare(loop)
        finally:
            loop.store.dispose()


def _counterpart(loop: Any, entity: EntityType, app_id: str) -> str:
    with loop.store.session() as s:
        link = s.find_link(loop.runner.connection, entity, Side.APP, app_id)
    if link is None or link.quickbooks_id is None:
        raise typer.Exit(1)
    return str(link.quickbooks_id)


def _step(stats: RunStats) -> None:
    console.print(
        f"captured {stats.captured} changes, decided {stats.decided}, applied {stats.applied} writes, "
        f"{stats.conflicts} conflicts"
    )


def _compare(loop: Any) -> None:
    from engine.compare import differing_fields

    table = Table(title="Both sides, field by field")
    for column in ("entity", "app id", "quickbooks id", "differing fields"):
        table.add_column(column)
    with loop.store.session() as s:
        open_fields = {(c.link_id, c.field) for c in s.list_conflicts(open_only=True)}
        for link in s.list_links(loop.runner.connection):
            app_rec = loop.app.get(link.entity, link.app_id) if link.app_id else None
            qbo_rec = loop.quickbooks.get(link.entity, link.quickbooks_id) if link.quickbooks_id else None
            if app_rec is None or qbo_rec is None:
                label = "only in " + ("QuickBooks" if app_rec is None else "the app")
            else:
                diff = sorted(differing_fields(s, link, app_rec, qbo_rec, loop.runner.policy))
                label = ", ".join(f"{d} (open conflict)" if (link.id, d) in open_fields else d for d in diff)
            table.add_row(link.entity, link.app_id or "-", link.quickbooks_id or "-", label or "none")
    console.print(table)
