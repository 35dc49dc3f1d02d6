"""`ledgersync connect | disconnect` (a tenant's company: the OAuth authorization-code flow, revoking it),
`ledgersync connections list` and `ledgersync status` (every connection: tenant, company, token expiry,
hard-expiry warnings, metered reads this month).

`status --json` prints a list of objects with keys id, tenant, realm_id, environment, status,
token_age_seconds, access_expires_at, refresh_expires_at, refresh_hard_expires_at, warning,
metered_reads (null without a Redis broker), ops (count by status), open_conflicts, parked (op_id,
entity, error), parked_records (records a side holds but could not read: side, entity, external_id,
version, error, action, since), dead_letters (messages the workers gave up on; null without a Redis
broker).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from engine.errors import ConfigurationError, LedgersyncError, NeedsReauthorizationError
from engine.plan import OpStatus
from engine.settings import DEFAULT_TENANT
from engine.state import Connection
from ledgersync.cli.context import EXIT_NEEDS_REAUTH, err, fail, load, out

HARD_EXPIRY_WARNING = timedelta(days=30)
FIX_IN_APP = "fix the value named in the app; the record syncs by itself once it is read again"
FIX_IN_QUICKBOOKS = "fix the record in QuickBooks; it syncs by itself once it is read again"


def register(app: typer.Typer) -> None:
    app.command("connect")(connect)
    app.command("disconnect")(disconnect)
    app.command("status")(status)
    connections = typer.Typer(
        help="The QuickBooks connections: one per tenant of the app.", no_args_is_help=True
    )
    connections.command("list")(list_connections)
    app.add_typer(connections, name="connections")


TenantOption = Annotated[
    str | None,
    typer.Option("--tenant", help="The app tenant whose company to connect (default: the default tenant)."),
]
ConnectionOption = Annotated[
    str | None, typer.Option("--connection", help="A connection by its id (its stored tenant).")
]


def _target(runtime: Any, tenant: str | None, connection: str | None) -> tuple[str, str]:
    """(connection id, tenant) named by --tenant or --connection (or the default tenant's)."""
    if tenant is not None and connection is not None:
        raise ConfigurationError("give --tenant or --connection, not both")
    if connection is not None:
        return connection, runtime.tenant_of(connection)
    tenant = tenant or DEFAULT_TENANT
    return runtime.connection_of(tenant), tenant


def connect(
    ctx: typer.Context,
    tenant: TenantOption = None,
    connection: ConnectionOption = None,
    realm: Annotated[
        str | None,
        typer.Option(
            "--realm",
            help="Emulator only: the company that consents (at Intuit, the user picks it when consenting).",
        ),
    ] = None,
) -> None:
    """Connect a tenant's QuickBooks company (or reconnect one that needs re-authorization or was
    disconnected): its own tokens, cursors, links, status and conflicts; no other connection changes.

    Against the emulator, which consents by itself, this completes without a browser; otherwise open
    the printed address, approve, and paste the address QuickBooks sent your browser back to.
    """
    from ledgersync.bootstrap import Runtime

    config = load(ctx)
    try:
        runtime = Runtime(config)
    except ConfigurationError as error:
        fail(str(error))
    try:
        target, owner = _target(runtime, tenant, connection)
        settings = runtime.custodian(tenant=owner).settings
        oauth = runtime.oauth(tenant=owner)
        if realm is not None and not settings.is_emulator:
            raise ConfigurationError(
                "--realm picks a company of the emulator; at Intuit, pick it when you consent"
            )
        request = oauth.authorization_request(realm=realm)
        out.print(f"Authorize ledgersync in QuickBooks:\n{request.url}", highlight=False, soft_wrap=True)
        if settings.is_emulator:
            callback = oauth.consent_automatically(request)
        else:
            pasted = typer.prompt("Paste the address QuickBooks redirected your browser to")
            callback = oauth.parse_callback(pasted, request.state)
        stored = runtime.custodian(tenant=owner).connect(
            target, oauth.exchange_code(callback), app_tenant=owner
        )
    except NeedsReauthorizationError as error:
        fail(str(error), EXIT_NEEDS_REAUTH)
    except LedgersyncError as error:
        fail(str(error))
    finally:
        runtime.close()
    tenant_note = "" if stored.app_tenant == DEFAULT_TENANT else f" for tenant {stored.app_tenant}"
    company = f"QuickBooks company {stored.realm_id} ({settings.environment})"
    out.print(f"Connected {stored.id}{tenant_note} to {company}.")


def disconnect(ctx: typer.Context, tenant: TenantOption = None, connection: ConnectionOption = None) -> None:
    """Revoke a tenant's QuickBooks authorization: its sync stops (links, history and conflicts stay
    for a reconnect to the same company); every other connection syncs on untouched."""
    from ledgersync.bootstrap import Runtime

    config = load(ctx)
    try:
        runtime = Runtime(config)
    except ConfigurationError as error:
        fail(str(error))
    try:
        target, owner = _target(runtime, tenant, connection)
        revoked = runtime.custodian(tenant=owner).disconnect(target)
    except LedgersyncError as error:
        fail(str(error))
    finally:
        runtime.close()
    out.print(f"Disconnected {revoked.id} from QuickBooks company {revoked.realm_id}.")


def list_connections(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Every connection: its id, tenant, QuickBooks company, environment and status.

    `--json` prints a list of objects with keys id, tenant, realm_id, environment, status, updated_at."""
    from ledgersync.bootstrap import open_configured_store

    config = load(ctx)
    store = open_configured_store(config)
    try:
        with store.session() as session:
            connections = session.list_connections()
    finally:
        store.dispose()
    rows = [
        {
            "id": c.id,
            "tenant": c.app_tenant,
            "realm_id": c.realm_id,
            "environment": c.environment,
            "status": c.status.value,
            "updated_at": None if c.updated_at is None else c.updated_at.isoformat(),
        }
        for c in connections
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print("No QuickBooks connection yet: run `ledgersync connect --tenant T`.")
        return
    table = Table(title=f"{len(rows)} connection(s)")
    for column in ("connection", "tenant", "company (realm)", "environment", "status"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["id"], row["tenant"], row["realm_id"] or "-", row["environment"], row["status"])
    out.print(table)


def status(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Connections (status, token age and expiry, warnings), pending, waiting and parked ops, open
    conflicts, and metered QuickBooks reads this month (with a Redis broker)."""
    from ledgersync.bootstrap import open_configured_store

    config = load(ctx)
    store = open_configured_store(config)
    try:
        with store.session() as session:
            connections = session.list_connections()
            counts = {c.id: session.counts(c.id) for c in connections}
            parked = {
                c.id: [r.model_dump(mode="json") for r in session.ops(c.id, [OpStatus.PARKED])]
                for c in connections
            }
            unreadable = {c.id: session.parked_records(c.id) for c in connections}
    finally:
        store.dispose()
    now = datetime.now(UTC)
    metered = _metered_reads(config.settings.broker_url, [c.realm_id for c in connections if c.realm_id])
    rows = []
    for c in connections:
        row = _row(c, now, metered.get(c.realm_id or ""))
        row["ops"] = counts[c.id].ops
        row["open_conflicts"] = counts[c.id].conflicts.get("open", 0)
        row["parked"] = [
            {"op_id": p["op"]["op_id"], "entity": p["op"]["entity"], "error": p["last_error"]}
            for p in parked[c.id]
        ]
        row["parked_records"] = [
            {
                "side": p.side.value,
                "entity": p.entity.value,
                "external_id": p.external_id,
                "version": p.seq,
                "error": p.reason,
                "action": FIX_IN_APP if p.side.value == "app" else FIX_IN_QUICKBOOKS,
                "since": p.parked_at.isoformat(),
            }
            for p in sorted(unreadable[c.id], key=lambda p: (p.side, p.entity, p.external_id))
        ]
        rows.append(row)
    dead = _dead_letters(config.settings.broker_url)
    for row in rows:
        row["dead_letters"] = dead
    if as_json:
        out.print_json(json.dumps(rows))
    else:
        _print(rows)
        if dead:
            out.print(
                f"[red]{dead} message(s) in the dead-letter queue[/red] (retries exhausted: see worker logs)"
            )
    if any(row["status"] != "connected" for row in rows):
        raise typer.Exit(EXIT_NEEDS_REAUTH)


def _row(connection: Connection, now: datetime, metered: dict[str, int] | None) -> dict[str, Any]:
    from connectors.quickbooks.tokens import hard_expiry_warning

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    age = None if connection.updated_at is None else int((now - connection.updated_at).total_seconds())
    return {
        "id": connection.id,
        "tenant": connection.app_tenant,
        "realm_id": connection.realm_id,
        "environment": connection.environment,
        "status": connection.status.value,
        "token_age_seconds": age,
        "access_expires_at": iso(connection.access_expires_at),
        "refresh_expires_at": iso(connection.refresh_expires_at),
        "refresh_hard_expires_at": iso(connection.refresh_hard_expires_at),
        "warning": hard_expiry_warning(connection, now, HARD_EXPIRY_WARNING),
        "metered_reads": metered,
    }


def _dead_letters(broker_url: str | None) -> int | None:
    if not broker_url:
        return None
    from engine.broker import dead_letters

    try:
        return dead_letters(broker_url)
    except Exception as error:  # the broker being down must not hide the rest of the status
        err.print(f"dead letters unavailable: {type(error).__name__}: {error}", highlight=False)
        return None


def _metered_reads(redis_url: str | None, realms: list[str]) -> dict[str, dict[str, int]]:
    if not redis_url or not realms:
        return {}
    from connectors.quickbooks.budget import metered_reads_from_redis

    try:
        return metered_reads_from_redis(redis_url, realms)
    except LedgersyncError as error:
        err.print(f"metered reads unavailable: {error}", highlight=False)
        return {}


def _print(rows: list[dict[str, Any]]) -> None:
    if not rows:
        out.print("No QuickBooks connection yet: run `ledgersync connect`.")
        return
    for row in rows:
        reads = row["metered_reads"]
        metered = "unknown (no Redis broker)" if reads is None else str(reads["total"])
        age = row["token_age_seconds"]
        out.print(
            f"{row['id']}: {row['status']}  tenant {row['tenant']}, "
            f"realm {row['realm_id']} ({row['environment']})\n"
            f"  tokens refreshed {'never' if age is None else f'{age // 60} min ago'}, "
            f"access token expires {row['access_expires_at']}\n"
            f"  refresh token expires {row['refresh_expires_at']}, "
            f"hard expiry {row['refresh_hard_expires_at']}\n"
            f"  metered reads this month: {metered}",
            highlight=False,
        )
        if row["status"] != "connected":
            out.print(f"  [yellow]reconnect: ledgersync connect --connection {row['id']}[/yellow]")
        if row["warning"]:
            out.print(f"  [yellow]{row['warning']}[/yellow]", highlight=False)
        ops = ", ".join(f"{n} {status}" for status, n in sorted(row["ops"].items())) or "none"
        out.print(f"  ops: {ops}; open conflicts: {row['open_conflicts']}", highlight=False)
        for p in row["parked"]:
            out.print(f"  [red]parked[/red] {p['entity']} op {p['op_id']}: {p['error']}", highlight=False)
        for p in row["parked_records"]:
            out.print(
                f"  [red]parked[/red] {p['side']} {p['entity']} {escape(p['external_id'])} (not read): "
                f"{escape(p['error'])}\n    {p['action']}",
                highlight=False,
            )
