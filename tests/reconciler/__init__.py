"""The reconciler's tests. Its properties run at least 1,000 examples in every profile (pure, fast)."""

from __future__ import annotations

from hypothesis import settings

RECONCILER_SETTINGS = settings(max_examples=max(1000, settings().max_examples))
