"""Test-wide settings: Hypothesis profiles (the CI profile runs at least 200 examples per property),
and which tests share one pytest-xdist worker."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_quiet = [HealthCheck.too_slow]
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=_quiet)
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=_quiet)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `-n N --dist loadgroup`, the integration tests (each runs `ledgersync` processes, some
    time how soon a change arrives) run one after another on one worker: never two of them at once,
    competing for the cores, PostgreSQL's connections and each other's timing margins. The scheduler
    hands out the largest groups first, so this one starts at once."""
    for item in items:
        if item.get_closest_marker("integration") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("processes"))
