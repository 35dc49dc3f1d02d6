"""The retry policy: one pure backoff function (exponential, capped, with full jitter)."""

from __future__ import annotations

import random

BASE_MS = 500
CAP_MS = 300_000


def backoff_ms(
    attempts: int, *, base_ms: int = BASE_MS, cap_ms: int = CAP_MS, rng: random.Random | None = None
) -> int:
    """How long to wait before attempt `attempts + 1`: uniform in [0, min(cap, base * 2**attempts)]."""
    ceiling = min(cap_ms, base_ms * 2 ** max(0, min(attempts, 30)))
    return int((rng or random).uniform(ceiling / 2, ceiling))
