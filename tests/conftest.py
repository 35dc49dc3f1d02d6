"""Test-wide settings: Hypothesis profiles (the CI profile runs at least 200 examples per property)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_quiet = [HealthCheck.too_slow]
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=_quiet)
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=_quiet)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
