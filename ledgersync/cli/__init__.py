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
        app_cmd,
        conflicts_cmd,
        connect_cmd,
        demo_cmd,
        emulator_cmd,
        policy_cmd,
        runtime_cmd,
    )
    from ledgersync.cli.context import config_option

    app.callback()(config_option)
    for module in (runtime_cmd, connect_cmd, conflicts_cmd, demo_cmd, policy_cmd, emulator_cmd, app_cmd):
        module.register(app)


def main() -> None:
    import logging

    # Warnings from the engine and connectors (a 429 waited out, a token refreshed after a 401) are
    # worth seeing; set LEDGERSYNC_LOG_LEVEL=INFO or DEBUG for more.
    import os

    level = os.environ.get("LEDGERSYNC_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="  [%(levelname)s %(name)s] %(message)s")
    _register()
    app()
