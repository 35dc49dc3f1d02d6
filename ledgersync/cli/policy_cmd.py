"""`ledgersync policy ...`: check a policy file and show what it resolves to.

`check --json` output is stable: `{"valid": true, "policy": {source, version, entities: {name:
{direction, conflict, match_keys, fill_empty_on_match, duplicate_names, on_delete: {app, quickbooks},
fields: {field: {direction, conflict, fill_empty_on_match}}}}}}` (exit 0), or `{"valid": false,
"file": ..., "problems": [...]}` (exit 2), each problem one `file:line:col: key.path: expected ...`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from policies.errors import PolicyFileError
from policies.loader import load_policy

#: A policy file that is not valid: the same exit code Click uses for a bad command line.
EXIT_INVALID = 2

policy_app = typer.Typer(help="Conflict and direction policies.", no_args_is_help=True)


@policy_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The policy YAML file.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Validate FILE and print the effective policy (exit 2, with every problem listed, if it is bad)."""
    try:
        policy = load_policy(file)
    except PolicyFileError as error:
        if as_json:
            typer.echo(json.dumps({"valid": False, "file": str(file), "problems": list(error.problems)}))
        else:
            for problem in error.problems:
                typer.echo(problem, err=True)
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        typer.echo(json.dumps({"valid": True, "policy": policy.effective()}, default=str))
        return
    show(policy.effective(), Console())


def show(effective: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]{effective['source']}[/bold]: valid policy (version {effective['version']})")
    for name, entity in effective["entities"].items():
        console.print(_entity_table(name, entity))
        on_delete = entity["on_delete"]
        console.print(f"  match keys:      {', '.join(entity['match_keys']) or '(none: never auto-linked)'}")
        if entity["duplicate_names"] is not None:
            console.print(f"  duplicate names: {entity['duplicate_names']}")
        console.print(
            f"  on delete:       in QuickBooks {on_delete['quickbooks']}, in the app {on_delete['app']}\n"
        )


def _entity_table(name: str, entity: dict[str, Any]) -> Table:
    table = Table(
        title=f"{name}: {entity['direction']}, conflicts {entity['conflict']}",
        title_justify="left",
    )
    table.add_column("field")
    table.add_column("direction")
    table.add_column("conflict")
    for field, settings in entity["fields"].items():
        table.add_row(field, settings["direction"], settings["conflict"] or "-")
    return table


def register(app: typer.Typer) -> None:
    """Add `policy` and its commands to the ledgersync app."""
    app.add_typer(policy_app, name="policy")
