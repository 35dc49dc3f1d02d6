"""The `ledgersync` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ledgersync",
    help="Keep your business app and QuickBooks Online in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each command group lives in its own module and adds itself to `app`.
    from ledgersync.cli import (
        alerts_cmd,
        app_cmd,
        conflicts_cmd,
        connect_cmd,
        demo_cmd,
        emulator_cmd,
        parked_cmd,
        policy_cmd,
        runtime_cmd,
        users_cmd,
    )
    from ledgersync.cli.context import config_option

    app.callback()(config_option)
    modules = (
        runtime_cmd,
        connect_cmd,
        conflicts_cmd,
        parked_cmd,
        users_cmd,
        demo_cmd,
        policy_cmd,
        emulator_cmd,
        app_cmd,
        alerts_cmd,
    )
    for module in modules:
        module.register(app)


def main() -> None:
    from engine.observe.logs import configure_logging
    from ledgersync.cli.context import log_settings

    # Until the configuration is read (each command reads it once, `context.load`), warnings from the
    # engine and connectors are shown as plain lines; LEDGERSYNC_LOG_LEVEL=INFO or DEBUG shows more.
    try:
        configure_logging(log_settings(None))
    except typer.Exit as stop:  # LEDGERSYNC_LOG_LEVEL is not a level: said, and exit 2
        raise SystemExit(stop.exit_code) from None
    _register()
    app()
