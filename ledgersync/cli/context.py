"""What every command shares: the global `--config` option, loading it once, and exit codes.

Exit codes a script can rely on: 0 done; 1 not found (or nothing to do where something was asked);
2 bad input or configuration; 3 the connection needs re-authorization; 4 the sync left work parked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from engine.errors import ConfigurationError
from engine.settings import Config, LoggingSettings

EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_NEEDS_REAUTH = 3
EXIT_PARKED = 4

out = Console()
err = Console(stderr=True)


ConfigPath = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="LEDGERSYNC_CONFIG",
        help="Configuration file (default: ./ledgersync.yaml).",
    ),
]


def config_option(ctx: typer.Context, config: ConfigPath = None) -> None:
    ctx.obj = {"config_path": config}


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load(ctx: typer.Context) -> Config:
    """The configuration, loaded once per command from `--config` and the environment."""
    from engine.settings import load_config
    from ledgersync.bootstrap import SECTIONS

    obj = ctx.find_root().obj or {}
    if "config" not in obj:
        try:
            obj["config"] = load_config(obj.get("config_path"), dict(os.environ), SECTIONS)
        except ConfigurationError as error:
            fail(str(error))
        ctx.find_root().obj = obj
        from engine.observe.logs import configure_logging, configured

        # `main` set up plain lines until now; a program that runs the commands itself (a test's
        # CliRunner) keeps its own logging unless the file has a `logging:` section.
        if configured() or "logging" in obj["config"].settings.model_fields_set:
            configure_logging(log_settings(obj["config"]))
    config: Config = obj["config"]
    return config


def log_settings(config: Config | None) -> LoggingSettings:
    """The `logging:` settings, with LEDGERSYNC_LOG_LEVEL (when set) overriding the level for one run."""
    settings = config.settings.logging if config is not None else LoggingSettings()
    level = os.environ.get("LEDGERSYNC_LOG_LEVEL")
    if not level:
        return settings
    try:
        return LoggingSettings(format=settings.format, level=level)
    except ValueError:
        fail(f"LEDGERSYNC_LOG_LEVEL={level!r}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn the engine's configuration errors into a message and exit code 2, never a traceback."""
    try:
        yield
    except ConfigurationError as error:
        fail(str(error))
