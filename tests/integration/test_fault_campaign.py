"""Issue 10: a fault campaign, end to end. Real ledgersync processes in distributed mode (Redis,
PostgreSQL, two workers, the scheduler, the web app) against the emulator, while users edit both sides
and faults land: 429 storms, 5xx bursts, timeouts after QuickBooks committed, duplicated, reordered and
dropped webhooks, a revoked token then a reconnect, kill -9 of a worker mid-apply, a flushed Redis.

At quiescence the test reads both sides itself and counts duplicates in QuickBooks, lost updates and
echo writes: all must be 0.

    LEDGERSYNC_FAULTS_SIZE=small|large (default small: the default test run)
    LEDGERSYNC_FAULTS_SEED=N           (default: a new one, printed; set it to replay a run)
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from tests.integration.campaign import EMULATED, FAULTS, SIZES, Script
from tests.integration.faults_count import judge
from tests.integration.faults_world import campaign_world

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_a_fault_campaign_ends_with_no_duplicate_no_lost_update_and_no_echo(tmp_path: Path) -> None:
    size_name = os.environ.get("LEDGERSYNC_FAULTS_SIZE", "small")
    if size_name not in SIZES:
        raise ValueError(f"LEDGERSYNC_FAULTS_SIZE must be one of {', '.join(SIZES)}, not {size_name!r}")
    size = SIZES[size_name]
    seed = int(os.environ.get("LEDGERSYNC_FAULTS_SEED") or secrets.randbelow(10**6))
    print(f"fault campaign: size {size_name} {size}, seed {seed} (LEDGERSYNC_FAULTS_SEED={seed} replays it)")
    started = time.monotonic()
    with campaign_world(tmp_path) as campaign:
        w = campaign.world
        # The web app and the scheduler boot while `connect` runs; the workers need the connection.
        w.processes.start("web", "web")
        w.processes.start("scheduler", "scheduler")
        w.connect()
        connected = time.monotonic() - started
        script = Script(campaign, size, seed)
        try:
            script.start_worker()
            script.start_worker()
            script.play()
            played = time.monotonic() - started - connected
            quiet = w.wait_until_quiet(timeout=60 + 2 * size.customers)
            verdict = judge(campaign, script.log)
        finally:
            script.close()
        fired = w.qbo.faults()["fired"]
    injected = {kind: script.log.injected[kind] for kind in FAULTS}
    print(f"injected: {injected}")
    print(f"fired in the emulator: {fired}")
    edits = {str(side): n for side, n in script.log.edits.items()}
    print(f"user edits: {edits}; writes ledgersync made: {verdict.writes}")
    print(f"counts: {verdict.counts()}")
    print(f"slow steps: {script.log.slow}")
    total = time.monotonic() - started
    print(f"connected {connected:.1f} s, played {played:.1f} s, quiet {quiet:.1f} s, {total:.1f} s in all")
    assert all(injected[kind] == size.rounds for kind in FAULTS), injected
    assert all(fired.get(kind, 0) > 0 for kind in EMULATED.values()), f"a fault never fired: {fired}"
    assert verdict.duplicates == [], verdict.duplicates
    assert verdict.missing == [], verdict.missing
    assert verdict.lost_updates == [], verdict.lost_updates
    assert verdict.echo_writes == [], verdict.echo_writes
