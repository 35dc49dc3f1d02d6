"""`ledgersync init` and `ledgersync app ...`: start a project, and install trigger-based capture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connectors.app.database import make_engine
from connectors.app.mapping import load_mapping
from connectors.app.starter import write_starter
from connectors.app.triggers import install
from engine.errors import ConfigurationError, LedgersyncError
from policies.loader import default_text

#: Bad configuration: the same exit code Click uses for a bad command line.
EXIT_INVALID = 2

app_app = typer.Typer(help="The app side: your database and its table mapping.", no_args_is_help=True)


def init(
    database_url: Annotated[
        str | None, typer.Option(help="Propose a mapping from the tables of this database (SQLAlchemy URL).")
    ] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the files.")] = Path(),
    force: Annotated[bool, typer.Option(help="Overwrite files that already exist.")] = False,
) -> None:
    """Write a commented ledgersync.yaml, a policy file and a table mapping to start from."""
    try:
        written = write_starter(directory, default_text(), database_url, force=force)
    except LedgersyncError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    for path in written:
        typer.echo(f"wrote {path}")
    if not written:
        typer.echo("nothing written: the files exist (use --force to overwrite)")
    else:
        typer.echo("next: check mapping.yaml against your tables, then set APP_DATABASE_URL")
        typer.echo("then: `ledgersync users add NAME` makes the review console's first admin")


@app_app.command("install-triggers")
def install_triggers(
    database_url: Annotated[str, typer.Option(help="The app's database (SQLAlchemy URL).")],
    mapping: Annotated[Path, typer.Option(help="The table mapping file.")] = Path("mapping.yaml"),
    schema: Annotated[str | None, typer.Option(help="PostgreSQL schema holding the app's tables.")] = None,
    show: Annotated[bool, typer.Option(help="Print the DDL it runs.")] = False,
) -> None:
    """Create the outbox table and the triggers that fill it (PostgreSQL, SQLite); safe to run again."""
    try:
        parsed = load_mapping(mapping)
        engine = make_engine(database_url, schema=schema)
        try:
            statements = install(engine, parsed)
        finally:
            engine.dispose()
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    except LedgersyncError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if show:
        typer.echo(";\n\n".join(statements) + ";")
    typer.echo(
        f"installed {len(statements)} statements into the outbox {parsed.outbox_table!r};"
        " set `capture: {mode: outbox}` on the entities that should read it"
    )


def register(app: typer.Typer) -> None:
    """Add `init` and the `app` group to the ledgersync app."""
    app.command("init")(init)
    app.add_typer(app_app, name="app")
