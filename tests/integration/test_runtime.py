"""Issue 6's "done when": the configured runtime, as real `ledgersync` processes, ends converged with no
duplicate and no lost update; distributed (two workers and the scheduler on Redis and PostgreSQL) and
embedded (`ledgersync run`, SQLite, in-process broker).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.harness import world
from tests.integration.workload import Sizes, play

pytestmark = pytest.mark.integration

#: The issue's sizes: 500 app changes (150 customers created, 20 invoices, 330 edits) and 200
#: QuickBooks edits by an accountant.
SIZES = Sizes(customers=150, invoices=20, app_edits=330, quickbooks_edits=200)


def test_two_workers_and_the_scheduler_converge_without_duplicates_or_lost_updates(tmp_path: Path) -> None:
    started = time.monotonic()
    with world(tmp_path, distributed=True) as w:
        w.connect()
        w.processes.start("worker-a", "worker", "--threads", "4")
        w.processes.start("worker-b", "worker", "--threads", "4")
        w.processes.start("scheduler", "scheduler")
        timings = play(w, SIZES)
    print(f"distributed, {SIZES}: {timings}, {time.monotonic() - started:.1f} s in all")


def test_embedded_mode_converges_without_duplicates_or_lost_updates(tmp_path: Path) -> None:
    started = time.monotonic()
    with world(tmp_path, distributed=False) as w:
        w.connect()
        w.processes.start("run", "run")
        timings = play(w, SIZES)
    print(f"embedded, {SIZES}: {timings}, {time.monotonic() - started:.1f} s in all")
