"""A wired in-process loop (SQLite state store, two fake sides, the default policy, a fake clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.bootstrap import InProcess, in_process
from engine.clock import FakeClock
from policies import PolicySet


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def loop(tmp_path: Path, clock: FakeClock) -> Iterator[InProcess]:
    world = in_process(f"sqlite:///{tmp_path / 'state.db'}", PolicySet.default(), clock)
    yield world
    world.store.dispose()
