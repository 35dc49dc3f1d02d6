"""`ledgersync connect` (the OAuth authorization-code flow) and `ledgersync status` (connections, token
expiry, hard-expiry warnings, metered reads this month).

`status --json` prints a list of objects with keys id, realm_id, environment, status, token_age_seconds,
access_expires_at, refresh_expires_at, refresh_hard_expires_at, warning, metered_reads (null when no
Redis budget is given).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from engine.cli.context import EXIT_NEEDS_REAUTH, err, fail, out
from engine.errors import ConfigurationError, LedgersyncError, NeedsReauthorizationError
from engine.state import Connection

DEFAULT_STORE = "sqlite:///ledgersync.db"
HARD_EXPIRY_WARNING = timedelta(days=30)

StoreUrl = Annotated[
    str, typer.Option("--state-store", envvar="LEDGERSYNC_STATE_STORE", help="State store URL.")
]


def register(app: typer.Typer) -> None:
    app.command("connect")(connect)
    app.command("status")(status)


def connect(
    environment: Annotated[
        str,
        typer.Option(
            envvar="LEDGERSYNC_QBO_ENVIRONMENT", help="sandbox, production, or an emulator base URL."
        ),
    ] = "sandbox",
    client_id: Annotated[
        str, typer.Option(envvar="LEDGERSYNC_QBO_CLIENT_ID", help="The app's OAuth client id.")
    ] = "",
    client_secret: Annotated[
        str,
        typer.Option(
            envvar="LEDGERSYNC_QBO_CLIENT_SECRET", help="The app's OAuth client secret.", show_default=False
        ),
    ] = "",
    redirect_uri: Annotated[
        str, typer.Option(envvar="LEDGERSYNC_QBO_REDIRECT_URI", help="Registered redirect URI.")
    ] = "http://localhost:8000/callback",
    state_store: StoreUrl = DEFAULT_STORE,
    connection: Annotated[str, typer.Option(help="Connection id (reconnect: the same id).")] = "default",
    secret_key: Annotated[
        str,
        typer.Option(
            envvar="LEDGERSYNC_SECRET_KEY",
            help="Fernet key that encrypts the stored tokens.",
            show_default=False,
        ),
    ] = "",
) -> None:
    """Connect a QuickBooks company (or reconnect one that needs re-authorization)."""
    from connectors.quickbooks.client import new_http_client
    from connectors.quickbooks.crypto import TokenCipher
    from connectors.quickbooks.oauth import OAuthClient
    from connectors.quickbooks.settings import QboSettings
    from connectors.quickbooks.tokens import TokenCustodian
    from engine.clock import SystemClock
    from engine.store import SqlStateStore

    if not client_id or not client_secret:
        fail("give --client-id and --client-secret (or LEDGERSYNC_QBO_CLIENT_ID / _SECRET)")
    try:
        cipher = TokenCipher(secret_key)
        settings = QboSettings(
            environment=environment,
            client_id=client_id,
            client_secret=SecretStr(client_secret),
            redirect_uri=redirect_uri,
        )
    except (ConfigurationError, ValueError) as error:
        fail(str(error))
    clock = SystemClock()
    store = SqlStateStore(state_store, create=True)
    try:
        with new_http_client(settings) as http:
            oauth = OAuthClient(http, settings, clock)
            request = oauth.authorization_request()
            out.print(f"Authorize ledgersync in QuickBooks:\n{request.url}", highlight=False, soft_wrap=True)
            if settings.is_emulator:
                callback = oauth.consent_automatically(request)
            else:
                pasted = typer.prompt("Paste the URL QuickBooks redirected your browser to")
                callback = oauth.parse_callback(pasted, request.state)
            tokens = oauth.exchange_code(callback)
            custodian = TokenCustodian(store, oauth, cipher, clock, settings)
            stored = custodian.connect(connection, tokens)
    except NeedsReauthorizationError as error:
        fail(str(error), EXIT_NEEDS_REAUTH)
    except LedgersyncError as error:
        fail(str(error))
    finally:
        store.dispose()
    out.print(f"Connected {stored.id} to QuickBooks company {stored.realm_id} ({settings.environment}).")


def status(
    state_store: StoreUrl = DEFAULT_STORE,
    redis_url: Annotated[
        str | None,
        typer.Option(envvar="LEDGERSYNC_REDIS_URL", help="Redis of the shared rate budget (metered reads)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Connections: status, token age and expiry, hard-expiry warnings, metered reads this month."""
    from engine.store import SqlStateStore

    store = SqlStateStore(state_store, create=True)
    try:
        with store.session() as session:
            connections = session.list_connections()
    finally:
        store.dispose()
    now = datetime.now(UTC)
    metered = _metered_reads(redis_url, [c.realm_id for c in connections if c.realm_id])
    rows = [_row(c, now, metered.get(c.realm_id or "")) for c in connections]
    if as_json:
        out.print_json(json.dumps(rows))
    else:
        _print(rows)
    if any(row["status"] != "connected" for row in rows):
        raise typer.Exit(EXIT_NEEDS_REAUTH)


def _row(connection: Connection, now: datetime, metered: dict[str, int] | None) -> dict[str, Any]:
    from connectors.quickbooks.tokens import hard_expiry_warning

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    age = None if connection.updated_at is None else int((now - connection.updated_at).total_seconds())
    return {
        "id": connection.id,
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
        metered = "unknown (no --redis-url)" if reads is None else str(reads["total"])
        age = row["token_age_seconds"]
        out.print(
            f"{row['id']}: {row['status']}  realm {row['realm_id']} ({row['environment']})\n"
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
