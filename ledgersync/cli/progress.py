"""The backfill's progress bar: what it is doing, how far it got, its rate in records a minute, and
the time left. Drawn only on a terminal, and never when the command prints JSON."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class PerMinuteColumn(ProgressColumn):
    """The task's recent rate, in records a minute (QuickBooks' limits are per minute)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed * 60:,.0f}/min", style="progress.data.speed")


class BackfillProgress:
    """Two steps: reading both sides (one tick per entity and side), then deciding and writing
    (one tick per record written, out of the records that changed)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def step(self, description: str, total: int) -> None:
        """Start the next step (the previous one is shown as complete)."""
        self.finish()
        self._task = self._progress.add_task(description, total=max(total, 1))

    def advance(self, amount: int = 1) -> None:
        if self._task is not None and amount > 0:
            task = self._progress.tasks[self._task]
            left = (task.total or 0) - task.completed
            self._progress.advance(self._task, min(amount, left))

    def finish(self) -> None:
        if self._task is not None:
            total = self._progress.tasks[self._task].total
            self._progress.update(self._task, completed=total)


@contextmanager
def backfill_progress(console: Console, *, quiet: bool) -> Iterator[BackfillProgress]:
    """A progress display on `console`; drawn nowhere when `quiet` or `console` is not a terminal."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        PerMinuteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
    )
    with progress:
        bar = BackfillProgress(progress)
        yield bar
        bar.finish()
