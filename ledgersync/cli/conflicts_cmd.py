"""`ledgersync conflicts list|show|resolve` and `ledgersync history`: the review queue from a terminal.

`--json` output is stable: a list (or one object) of conflicts with keys id, connection, entity,
link_id, app_id, quickbooks_id, label, field, base, app, quickbooks, policy, status, resolution,
resolved_by, resolved_at, created_at, reason (why, when a side refused the value: a name another
record holds; else null); history entries with id, at, action, entity, side, external_id, link_id,
detail.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from engine.history import record_history, record_label
from engine.model import EntityType, Side
from engine.refusals import refusal_reasons
from engine.state import AuditEntry, Conflict, Link
from ledgersync.cli.context import EXIT_NOT_FOUND, clean_errors, err, fail, load, out

conflicts = typer.Typer(help="Review the conflicts no policy could decide.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(conflicts, name="conflicts")
    app.command("history")(history)


def _links(ctx: typer.Context) -> Any:
    """The store, the tenants (each connection's policy) and the configuration."""
    from ledgersync.bootstrap import open_configured_store
    from ledgersync.tenancy import Tenancy

    config = load(ctx)
    with clean_errors():
        return open_configured_store(config), Tenancy.load(config), config


def _connections(s: Any, tenancy: Any, tenant: str | None) -> list[str]:
    """`tenant`'s connection, else every stored one (and the configured default)."""
    if tenant is not None:
        with clean_errors():
            return [tenancy.connection_of(tenant)]
    return list(dict.fromkeys([tenancy.config.settings.connection, *(c.id for c in s.list_connections())]))


Tenant = Annotated[str | None, typer.Option("--tenant", help="Only this tenant's (default: every tenant's).")]


def conflict_json(conflict: Conflict, link: Link | None, s: Any) -> dict[str, Any]:
    data = conflict.model_dump(mode="json")
    data["app_id"] = link.app_id if link else None
    data["quickbooks_id"] = link.quickbooks_id if link else None
    data["label"] = record_label(s, link) if link else None
    data["reason"] = refusal_reasons(s, link, [conflict]).get(conflict.id) if link else None
    return data


@conflicts.command("list")
def list_conflicts(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    include_resolved: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    tenant: Tenant = None,
) -> None:
    """The open conflicts (oldest first), of every connection or `--tenant`'s."""
    store, tenancy, _ = _links(ctx)
    try:
        with store.session() as s:
            items = [
                conflict_json(c, s.get_link(c.link_id), s)
                for connection in _connections(s, tenancy, tenant)
                for c in s.list_conflicts(connection, open_only=not include_resolved)
            ]
    finally:
        store.dispose()
    if as_json:
        out.print_json(json.dumps(items))
        return
    if not items:
        out.print("No open conflicts.")
        return
    table = Table(title=f"{len(items)} conflict(s)")
    for column in ("id", "record", "field", "base", "app", "quickbooks", "status"):
        table.add_column(column)
    for c in items:
        ids = f"app {c['app_id'] or '-'}, QuickBooks {c['quickbooks_id'] or '-'}"
        record = f"{c['entity']} {c['label'] or ''} ({ids})"
        table.add_row(
            str(c["id"]),
            record,
            c["field"],
            _show(c["base"]),
            _show(c["app"]),
            _show(c["quickbooks"]),
            c["status"],
        )
    out.print(table)
    for c in items:
        if c["reason"]:
            out.print(f"#{c['id']} {c['field']}: {c['reason']}")


@conflicts.command("show")
def show(
    ctx: typer.Context,
    conflict_id: int,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """One conflict: base, app and QuickBooks values side by side, and the record's history."""
    store, _, config = _links(ctx)
    try:
        with store.session() as s:
            conflict = s.get_conflict(conflict_id)
            if conflict is None:
                fail(f"no conflict {conflict_id}", EXIT_NOT_FOUND)
            link = s.get_link(conflict.link_id)
            entries = record_history(s, link, limit=20) if link else []
            data = conflict_json(conflict, link, s)
    finally:
        store.dispose()
    if as_json:
        out.print_json(json.dumps({**data, "history": [_entry_json(e) for e in entries]}))
        return
    name = f" {data['label']}" if data["label"] else ""
    table = Table(title=f"conflict #{conflict_id}: {data['entity']}{name}.{data['field']} ({data['status']})")
    for column in ("", "value"):
        table.add_column(column)
    table.add_row("base (last agreed)", _show(data["base"]))
    table.add_row(f"app ({data['app_id']})", _show(data["app"]))
    table.add_row(f"QuickBooks ({data['quickbooks_id']})", _show(data["quickbooks"]))
    if data["status"] == "resolved":
        table.add_row(f"resolved by {data['resolved_by']}", _show(data["resolution"]))
    out.print(table)
    if data["reason"]:
        out.print(f"why: {data['reason']}")
    if link is not None:
        _print_timeline(entries, link, config.settings.web.time_zone)


@conflicts.command("resolve")
def resolve_command(
    ctx: typer.Context,
    conflict_id: int,
    take: Annotated[str | None, typer.Option(help="Keep this side's value: app or quickbooks.")] = None,
    set_: Annotated[str | None, typer.Option("--set", help="FIELD=VALUE (JSON or text).")] = None,
    by: Annotated[str, typer.Option(help="Who resolved it, for the audit trail.")] = "cli",
) -> None:
    """Resolve a conflict; the choice is written to whichever side needs it on the next sync."""
    from engine.resolve import resolve

    if (take is None) == (set_ is None):
        fail("give exactly one of --take app|quickbooks or --set FIELD=VALUE")
    store, tenancy, _ = _links(ctx)
    try:
        with store.session() as s:
            conflict = s.get_conflict(conflict_id)
            if conflict is None:
                fail(f"no conflict {conflict_id}", EXIT_NOT_FOUND)
            choice = _choice(take, set_, conflict.field)
            # Decided by the policy of the tenant whose conflict it is.
            stored = s.get_connection(conflict.connection)
            policy = tenancy.policy(tenancy.tenant_of(conflict.connection, stored))
            with clean_errors():
                resolved = resolve(s, conflict_id, choice, by, policy, _now())
    finally:
        store.dispose()
    out.print(f"conflict #{conflict_id} resolved: {conflict.field} = {_show(resolved.resolution)}")


def _choice(take: str | None, set_: str | None, field: str) -> Any:
    from engine.resolve import Choice

    if take is not None:
        try:
            return Choice(take=Side(take))
        except ValueError:
            fail(f"--take expects app or quickbooks, got {take!r}")
    assert set_ is not None
    name, sep, raw = set_.partition("=")
    if not sep:
        fail(f"--set expects FIELD=VALUE, got {set_!r}")
    if name != field:
        fail(f"conflict is on field {field!r}, not {name!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return Choice(value=value)


def history(
    ctx: typer.Context,
    record: Annotated[str, typer.Argument(help="ENTITY:SIDE:ID (e.g. customer:app:42) or a link id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    limit: Annotated[int, typer.Option(help="How many entries, newest last.")] = 100,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Whose record ENTITY:SIDE:ID is (default: the default tenant's)."),
    ] = None,
) -> None:
    """A record's history, as the console's timeline tells it ("phone changed in QuickBooks", "sent to
    the app", "conflict on Email opened", "resolved by maria"); --json: the audit entries themselves."""
    store, tenancy, config = _links(ctx)
    try:
        with store.session() as s:
            connection = _connections(s, tenancy, tenant)[0] if tenant else config.settings.connection
            link = _link(s, connection, record)
            entries = record_history(s, link, limit=limit)
    finally:
        store.dispose()
    if as_json:
        out.print_json(json.dumps([_entry_json(e) for e in entries]))
        return
    _print_timeline(entries, link, config.settings.web.time_zone)


def _link(s: Any, connection: str, record: str) -> Link:
    parts = record.split(":")
    if len(parts) == 1:
        found: Link | None = s.get_link(record)
        if found is None:
            fail(f"no link {record!r}", EXIT_NOT_FOUND)
        return found
    try:
        entity, side, external_id = EntityType(parts[0]), Side(parts[1]), ":".join(parts[2:])
    except ValueError:
        fail(f"expected ENTITY:SIDE:ID such as customer:app:42, got {record!r}")
    link = s.find_link(connection, entity, side, external_id)
    if link is None:
        fail(f"no {entity} {external_id!r} known on {side}", EXIT_NOT_FOUND)
    linked: Link = link
    return linked


def _entry_json(entry: AuditEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json")


def _print_timeline(entries: list[AuditEntry], link: Link, time_zone: str) -> None:
    from connectors.quickbooks.labels import LABELS
    from engine.timeline import timeline
    from engine.web.present import Presenter

    present = Presenter(time_zone=time_zone, labels=LABELS)
    lines = timeline(entries, lambda name: present.label(link.entity, name))
    if not lines:
        err.print("No history yet.")
        return
    table = Table(
        title=f"history of {link.entity} (app {link.app_id or '-'}, QuickBooks {link.quickbooks_id or '-'})"
    )
    for column in ("when", "what happened"):
        table.add_column(column)
    for line in lines:
        table.add_row(present.when(line.at), line.text)
    out.print(table)


def _show(value: Any) -> str:
    return "—" if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _now() -> Any:
    from engine.clock import SystemClock

    return SystemClock().now()
