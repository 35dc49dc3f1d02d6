"""`ledgersync alerts check`: check the alert conditions once and send what is new (as the scheduler
does every `schedule.alerts_seconds`); each incident is sent once whichever process finds it.

`--json` output is stable: `{"open": [{key, kind, connection, message}], "sent": [{key, channel}],
"failed": [{key, channel, error}]}`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from engine.errors import ConfigurationError, LedgersyncError
from ledgersync.cli.context import err, fail, load, out

alerts_app = typer.Typer(help="Alerts: re-authorization, parked records, old conflicts, quota.")


@alerts_app.command("check")
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Check the alert conditions now and send each new incident to the configured channels."""
    from ledgersync.bootstrap import Runtime

    config = load(ctx)
    try:
        runtime = Runtime(config)
    except ConfigurationError as error:
        fail(str(error))
    try:
        alerts = runtime.alert_check()
        if alerts is None:
            fail(f"{config.source}: no alert channel; add alerts.webhook_url or alerts.email")
        report = alerts.run()
    except LedgersyncError as error:
        fail(str(error))
    finally:
        runtime.close()
    if as_json:
        result = {
            "open": [i.model_dump(include={"key", "kind", "connection", "message"}) for i in report.open],
            "sent": [{"key": key, "channel": channel} for key, channel in report.sent],
            "failed": [{"key": k, "channel": c, "error": e} for k, c, e in report.failed],
        }
        out.print_json(json.dumps(result))
        return
    out.print(f"{len(report.open)} open incident(s), {len(report.sent)} alert(s) sent", highlight=False)
    for incident in report.open:
        out.print(f"  {incident.subject}: {incident.message}", highlight=False)
    for key, channel, problem in report.failed:
        err.print(
            f"  not sent to {channel}: {key}: {problem} (tried again at the next check)", highlight=False
        )


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
