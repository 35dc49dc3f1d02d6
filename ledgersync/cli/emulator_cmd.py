"""`ledgersync emulator`: run the QuickBooks Online emulator in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from connectors.quickbooks.emulator.config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_REALM_ID,
    DEFAULT_VERIFIER_TOKEN,
    EmulatorConfig,
)


def emulator(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    realm: Annotated[str, typer.Option(help="The emulated company's realm id.")] = DEFAULT_REALM_ID,
    client_id: Annotated[str, typer.Option(help="The app's OAuth client id.")] = DEFAULT_CLIENT_ID,
    client_secret: Annotated[
        str, typer.Option(help="The app's OAuth client secret.")
    ] = DEFAULT_CLIENT_SECRET,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where to deliver webhooks (none: no delivery).")
    ] = None,
    verifier_token: Annotated[str, typer.Option(help="Webhook verifier token (signs intuit-signature).")] = (
        DEFAULT_VERIFIER_TOKEN
    ),
    webhook_format: Annotated[
        str, typer.Option(help="Webhook payloads: cloudevents or legacy.")
    ] = "cloudevents",
    state: Annotated[
        Path | None, typer.Option(help="Persist state to this JSON file (default: memory).")
    ] = None,
    minute_seconds: Annotated[
        float, typer.Option(help="Length of a throttling 'minute', in seconds.")
    ] = 60.0,
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Allowed redirect URI; repeat for several (default: any).")
    ] = None,
    deny_consent: Annotated[
        bool, typer.Option(help="Answer every consent with error=access_denied.")
    ] = False,
    refresh_grace: Annotated[
        float, typer.Option(help="Seconds a rotated-away refresh token keeps working.")
    ] = 86400.0,
    companies: Annotated[
        int,
        typer.Option(
            min=1,
            help="Companies hosted: --realm and N-1 more, numbered 9341455600000002, ... (connect one with"
            " `ledgersync connect --tenant T --realm R`).",
        ),
    ] = 1,
    company_picker: Annotated[
        bool,
        typer.Option(help="With several companies, a consent without a realm shows a page to pick one."),
    ] = False,
) -> None:
    """Run a QuickBooks Online emulator (OAuth, Accounting API, CDC, batch, webhooks, faults)."""
    from connectors.quickbooks.emulator.server import serve

    if webhook_format not in ("cloudevents", "legacy"):
        raise typer.BadParameter("must be cloudevents or legacy", param_hint="--webhook-format")
    fmt: Literal["cloudevents", "legacy"] = "cloudevents" if webhook_format == "cloudevents" else "legacy"
    config = EmulatorConfig(
        realm_id=realm,
        client_id=client_id,
        client_secret=client_secret,
        webhook_url=webhook_url,
        verifier_token=verifier_token,
        webhook_format=fmt,
        state_file=state,
        minute_seconds=minute_seconds,
        redirect_uri_allowlist=tuple(redirect_uri or ()),
        deny_consent=deny_consent,
        refresh_grace_period=refresh_grace,
        company_picker=company_picker,
    ).with_companies(companies)
    realms = [c.realm_id for c in config.companies()]
    shown = ", ".join(realms[:3]) + (
        f" ... {realms[-1]} ({len(realms)} companies)" if len(realms) > 3 else ""
    )
    base_url = f"http://{host}:{port}"
    typer.echo(f"QuickBooks Online emulator on {base_url}")
    typer.echo(f"  discovery:      {base_url}/.well-known/openid_configuration")
    typer.echo(f"  accounting API: {base_url}/v3/company/{realm}/")
    typer.echo(f"  control API:    {base_url}/_emulator/")
    typer.echo(f"  realm id:       {shown}")
    typer.echo(f"  client id:      {client_id}")
    typer.echo(f"  client secret:  {client_secret}")
    typer.echo(f"  verifier token: {verifier_token}")
    typer.echo(f"  webhooks:       {webhook_url or 'off'} ({webhook_format})")
    typer.echo(f"  state:          {state or 'in memory'}")
    serve(config, host=host, port=port)


def register(app: typer.Typer) -> None:
    """Add `ledgersync emulator` to the ledgersync app."""
    app.command(name="emulator")(emulator)
