"""The backfill after the initial match: read both sides, decide and write a page of records at a time,
then settle what the writes changed on the other side, stopping at the first pass that writes nothing.

Paged so that a backfill holds one page of records (their decisions, their ops), whatever its size.
Settling stops when a pass wrote nothing: what that pass read was the echo of the previous pass's
writes (or nothing), so nothing is left to write, and a further pass would only read both sides again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from engine.model import Side
from engine.runner import Runner, RunStats

log = logging.getLogger(__name__)

#: Records decided (and their ops applied) at once.
PAGE = 2_000
#: Settling passes before giving up (each reads both sides once): a sync that never settles spins.
MAX_PASSES = 50


def read_both_sides(runner: Runner, stats: RunStats, tick: Callable[[], None] = lambda: None) -> None:
    """Every side's changes of every entity since its cursor, journaled; `tick` after each side's read."""
    for side in Side:
        if side in runner.connectors:
            runner.poll_side(side, stats)
            tick()


def write_pending(
    runner: Runner, stats: RunStats, advance: Callable[[int], None] = lambda n: None, *, page: int = PAGE
) -> int:
    """Decide and write what is pending, `page` records at a time, until a round does neither; the
    writes applied. `advance` gets each round's writes as they land (the progress bar).

    The next page is decided on a thread of its own while this one is written (the writes mostly wait
    on the other side and its rate budget), so the budget does not sit idle while a page is decided.
    Its ops join the writes as they are committed. A record decided before a record it references is
    linked waits, and is decided again in the next round."""
    before = stats.applied
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decide") as ahead:
        decided = runner.decide_pending(stats, limit=page)
        while True:
            following = ahead.submit(runner.decide_pending, stats, limit=page)
            start = stats.applied
            applied = runner.apply_pending(stats)
            advance(stats.applied - start)
            decided_ahead = following.result()
            if not (decided or applied or decided_ahead):
                return stats.applied - before
            decided = decided_ahead


def settle(runner: Runner, stats: RunStats, *, page: int = PAGE) -> None:
    """Read back what the writes changed and write it, pass after pass, until a pass writes nothing."""
    for _ in range(MAX_PASSES):
        runner.resume_waiting()
        read_both_sides(runner, stats)
        if write_pending(runner, stats, page=page) == 0:
            return
    log.warning("backfill did not settle after %d passes", MAX_PASSES)
