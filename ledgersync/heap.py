"""The garbage collector set for a long-lived sync process: its start-up heap frozen, young
collections less frequent.

A process that runs the sync holds a large heap from start-up on (SQLAlchemy, pydantic, the web
stack, the mapping and policies: over 100,000 objects) that never becomes garbage. CPython's full
collection walks all of it whenever the objects that survived younger collections grow by a quarter,
which a sync of a few hundred changes does: measured with `python -m bench cpu`, one full collection
in nearly every such sync, 0.1 s of its 0.4 s, and the reason the same sync's CPU varied by half
from run to run. Frozen, the start-up heap is left out of every collection (`gc.freeze`), so a full
collection walks only what the sync itself made.

The cost: cyclic garbage that exists at the moment of freezing is never freed. Settling happens
once, after start-up, when there is next to none (a `gc.collect()` first found 0 objects and took
70 ms). Only the CLI's long-running and sync commands settle, never the library: a program that
embeds `ledgersync.bootstrap.Runtime` keeps its own collector settings.
"""

from __future__ import annotations

import gc
import threading

#: Allocations (less deallocations) between young collections; CPython's default is 700. A sync
#: allocates in bursts of records that live for one page, so most of them are freed by reference
#: counting before a young collection would look at them.
YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_settled = False


def settle() -> bool:
    """Freeze what this process holds now and raise the young threshold; True the first time,
    False (nothing done) after that, so a command that runs another one in-process settles once."""
    global _settled  # noqa: PLW0603 - once per process, by design
    with _lock:
        if _settled:
            return False
        _settled = True
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    return True
