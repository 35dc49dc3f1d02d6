"""A wired in-process loop (state store on SQLite and PostgreSQL, two fake sides, the default policy)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.clock import FakeClock
from policies import PolicySet
from tests.support.loop import InProcess, in_process
from tests.support.stores import fresh_store, store_backend  # noqa: F401 - a fixture


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def loop(tmp_path: Path, clock: FakeClock, store_backend: str) -> Iterator[InProcess]:  # noqa: F811
    with fresh_store(store_backend, tmp_path) as store:
        yield in_process(store, PolicySet.default(), clock)
