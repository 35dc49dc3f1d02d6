"""`ledgersync parked list|retry|skip`: parked work from a terminal, as the console's Parked page shows it.

An item's id is an op id (a write a side refused) or SIDE:ENTITY:ID (a record that could not be read,
e.g. app:invoice:17). `list --json` prints objects with keys kind, id, connection, entity, side,
external_id, link_id, why, what_to_do, error, since.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer

from engine.errors import LedgersyncError, NotFoundError
from engine.parking import parked, retry_op, retry_record, skip_op, skip_record
from ledgersync.cli.context import EXIT_NOT_FOUND, clean_errors, fail, load, out

parked_app = typer.Typer(
    help="Work a side refused or could not read: why, and retry or skip.", no_args_is_help=True
)

By = Annotated[str, typer.Option(help="Who did it, for the record's history.")]


def register(app: typer.Typer) -> None:
    app.add_typer(parked_app, name="parked")


def _open(ctx: typer.Context) -> tuple[Any, str]:
    from ledgersync.bootstrap import open_configured_store

    config = load(ctx)
    with clean_errors():
        return open_configured_store(config), config.settings.connection


def _now() -> Any:
    from engine.clock import SystemClock

    return SystemClock().now()


@parked_app.command("list")
def list_parked(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Every parked item: why, in words, and what to do."""
    store, connection = _open(ctx)
    try:
        with store.session() as s:
            items = parked(s, connection)
    finally:
        store.dispose()
    if as_json:
        rows = [{**dataclasses.asdict(i), "since": i.since.isoformat()} for i in items]
        out.print_json(json.dumps(rows))
        return
    if not items:
        out.print("Nothing is parked.")
        return
    for item in items:
        out.print(
            f"[bold]{item.kind} {item.id}[/bold] ({item.entity} on {item.side})\n"
            f"  why: {item.why}\n  what to do: {item.what_to_do}",
            highlight=False,
            markup=True,
        )


def _act(ctx: typer.Context, item: str, retry: bool, by: str) -> None:
    store, connection = _open(ctx)
    now = _now()
    try:
        with store.session() as s:
            if ":" in item:
                if retry:
                    retry_record(s, connection, item, now)
                else:
                    skip_record(s, connection, item, by, now)
            elif retry:
                retry_op(s, item, by, now)
            else:
                skip_op(s, item, by, now)
    except NotFoundError as error:
        fail(str(error), EXIT_NOT_FOUND)
    except LedgersyncError as error:
        fail(str(error))
    finally:
        store.dispose()


@parked_app.command("retry")
def retry(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="An op id, or SIDE:ENTITY:ID.")],
    by: By = "cli",
) -> None:
    """Send a parked op again, or read a parked record again at the next sync."""
    _act(ctx, item, True, by)
    out.print(f"{item}: will be tried again at the next sync", highlight=False)


@parked_app.command("skip")
def skip(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="An op id, or SIDE:ENTITY:ID.")],
    by: By = "cli",
) -> None:
    """Set a parked op aside for good, or drop a parked record from the list until it changes again."""
    _act(ctx, item, False, by)
    out.print(f"{item}: skipped", highlight=False)
