"""The retry policy's one pure backoff function: exponential, capped, with equal jitter.

Both retry loops use it: the QuickBooks client between attempts of one call (5xx, timeouts; its base
and cap are `quickbooks.backoff_base_seconds` and `backoff_max_seconds`), and the `apply` actor before
it sends a failed op again (`OP_BASE_SECONDS`, `OP_CAP_SECONDS`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

#: The `apply` actor's backoff between attempts of an op that failed for a retriable reason.
OP_BASE_SECONDS = 0.5
OP_CAP_SECONDS = 300.0
#: Past this many doublings any cap is reached; it keeps `2**attempt` a small number.
_MAX_DOUBLINGS = 62


def backoff_delay(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """How long to wait after failed attempt `attempt` (0: the first), in the unit of `base` and `cap`:
    uniform in [ceiling / 2, ceiling], where ceiling = min(cap, base * 2**attempt).

    The floor of half the ceiling keeps a retry from coming straight back after a failure (Dramatiq's
    own backoff does the same); the jitter in the upper half spreads the retries of many workers.
    A negative `attempt` counts as 0. `rand` draws from [0, 1); pass one to make the delay exact.
    """
    ceiling = min(cap, math.ldexp(base, max(0, min(attempt, _MAX_DOUBLINGS))))
    return ceiling / 2 + rand() * ceiling / 2
