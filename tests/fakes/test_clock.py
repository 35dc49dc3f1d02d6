"""The clocks: the system clock is aware UTC, the fake one moves only when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.clock import FakeClock, SystemClock
from engine.ports import Clock

from .conftest import T0


def test_system_clock_tells_aware_utc_time() -> None:
    clock: Clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_fake_clock_stands_still_until_advanced(clock: FakeClock) -> None:
    assert clock.now() == clock.now() == T0
    assert clock.advance(90) == T0 + timedelta(seconds=90)
    assert clock.now() == T0 + timedelta(seconds=90)


def test_fake_clock_can_be_set_anywhere(clock: FakeClock) -> None:
    earlier = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    clock.set(earlier)
    assert clock.now() == earlier


def test_fake_clock_refuses_naive_times_and_going_back(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)
