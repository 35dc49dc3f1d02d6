"""`ledgersync demo`: the emulator and the example app on temporary storage, synced step by step."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    keep: Annotated[
        Path | None, typer.Option(help="Keep the demo's files (config, databases) in this directory.")
    ] = None,
) -> None:
    """Start the QuickBooks emulator and the example invoicing app, connect, backfill, and play a short
    story of what users do on both sides; ends comparing both sides field by field (exit 1 if they differ)."""
    from ledgersync.demo import run_demo

    def step(title: str) -> None:
        console.rule(title)

    if keep is not None:
        if (keep / "ledgersync.yaml").exists():
            console.print(f"{keep} already holds a kept demo; use it as it says, or give another directory")
            raise typer.Exit(2)
        keep.mkdir(parents=True, exist_ok=True)
        differing = run_demo(keep.resolve(), console.print, step, keep=True)
    else:
        with tempfile.TemporaryDirectory(prefix="ledgersync-demo-") as tmp:
            differing = run_demo(Path(tmp), console.print, step)
    if differing:
        raise typer.Exit(1)
    console.print("[green]Both sides agree on every synced field.[/green]")
