"""The backfill's progress bar: steps, records written, rate per minute and time left; drawn only on
a terminal and never under --json."""

from __future__ import annotations

import io
import time

from rich.console import Console

from ledgersync.cli.progress import backfill_progress


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=terminal, width=120, color_system=None), sink


def test_on_a_terminal_it_shows_each_step_with_its_count_rate_and_time_left() -> None:
    screen, sink = console(terminal=True)
    with backfill_progress(screen, quiet=False) as bar:
        bar.step("reading both sides", 8)
        bar.advance(8)
        bar.step("writing", 300)
        for _ in range(3):
            time.sleep(0.05)
            bar.advance(50)
        bar.advance(1_000)  # more writes than records changed (echoes back): never past the total
    shown = sink.getvalue()
    assert "reading both sides" in shown and "8/8" in shown
    assert "writing" in shown and "300/300" in shown and "/min" in shown and "eta" in shown
    assert "1300" not in shown


def test_it_draws_nothing_when_quiet_or_not_on_a_terminal() -> None:
    for terminal, quiet in ((True, True), (False, False)):
        screen, sink = console(terminal)
        with backfill_progress(screen, quiet=quiet) as bar:
            bar.step("writing", 10)
            bar.advance(10)
        assert sink.getvalue() == "", (terminal, quiet)
