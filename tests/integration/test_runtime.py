"""Issue 6's "done when": the configured runtime, as real `ledgersync` processes, ends converged with no
duplicate and no lost update; distributed (two workers and the scheduler on Redis and PostgreSQL) and
embedded (`ledgersync run`, SQLite, in-process broker).

How hard they press (workers, threads, seeds, latency, the kick's pace, busy cores) comes from the
LEDGERSYNC_RUNTIME_* variables read in tests/integration/pressure.py; unset, it is CI's run.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.harness import World, world
from tests.integration.pressure import PRESSURE, burning
from tests.integration.workload import Sizes, play

pytestmark = pytest.mark.integration

#: The issue's sizes: 500 app changes (150 customers created, 20 invoices, 330 edits) and 200
#: QuickBooks edits by an accountant.
SIZES = Sizes(customers=150, invoices=20, app_edits=330, quickbooks_edits=200)
#: Per waiting phase; busy cores slow everything down.
QUIET_TIMEOUT = 120 + 60 * PRESSURE.burn
seeds = pytest.mark.parametrize("seed", PRESSURE.seeds, ids=lambda seed: f"seed{seed}")


def slow_quickbooks(w: World) -> None:
    if PRESSURE.latency:
        w.qbo.inject_fault("latency", delay=PRESSURE.latency, seconds=86_400, path_contains="/customer")


@seeds
def test_two_workers_and_the_scheduler_converge_without_duplicates_or_lost_updates(
    tmp_path: Path, seed: int
) -> None:
    started = time.monotonic()
    with (
        burning(PRESSURE.burn),
        world(tmp_path, distributed=True, kick_seconds=PRESSURE.kick_seconds) as w,
    ):
        w.connect()
        slow_quickbooks(w)
        for n in range(PRESSURE.workers):
            w.processes.start(f"worker-{n}", "worker", "--threads", str(PRESSURE.threads))
        w.processes.start("scheduler", "scheduler")
        timings = play(w, SIZES, quiet_timeout=QUIET_TIMEOUT, seed=seed)
    print(f"distributed, {SIZES}, {PRESSURE}, seed {seed}: {timings}, {time.monotonic() - started:.1f} s")


@seeds
def test_embedded_mode_converges_without_duplicates_or_lost_updates(tmp_path: Path, seed: int) -> None:
    started = time.monotonic()
    with (
        burning(PRESSURE.burn),
        world(tmp_path, distributed=False, kick_seconds=PRESSURE.kick_seconds) as w,
    ):
        w.connect()
        slow_quickbooks(w)
        w.processes.start("run", "run")
        timings = play(w, SIZES, quiet_timeout=QUIET_TIMEOUT, seed=seed)
    print(f"embedded, {SIZES}, {PRESSURE}, seed {seed}: {timings}, {time.monotonic() - started:.1f} s")
