"""Clocks: the real UTC clock, and a fake one that tests and the demo loop move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to; deterministic time for tests and the demo loop."""

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by `seconds` (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds})")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, dt: datetime) -> None:
        """Jump to `dt` (any direction: tests of clock skew need it)."""
        self._now = _aware(dt)


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"a clock's time must be timezone-aware, got {dt!r}")
    return dt
