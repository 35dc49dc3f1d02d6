"""The emulator's own clock: real time plus a controllable offset, in the company's time zone."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone


class EmulatorClock:
    """Runs with real time and can be pushed forward so token expiry and CDC windows are quick to test."""

    def __init__(self, tz: timezone, start: datetime | None = None) -> None:
        self.tz = tz
        self._lock = threading.Lock()
        origin = start if start is not None else datetime.now(tz)
        if origin.tzinfo is None:
            raise ValueError("start time must be timezone-aware")
        self._origin = origin.astimezone(tz)
        self._mono0 = time.monotonic()
        self._offset = 0.0

    def now(self) -> datetime:
        with self._lock:
            elapsed = time.monotonic() - self._mono0 + self._offset
        return self._origin + timedelta(seconds=elapsed)

    def timestamp(self) -> float:
        return self.now().timestamp()

    def today(self) -> date:
        return self.now().date()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def restore_offset(self, offset: float) -> None:
        with self._lock:
            self._offset = offset


def format_stamp(moment: datetime, tz: timezone) -> str:
    """A MetaData timestamp: company-local, second precision, with offset (`2026-08-31T12:11:06-07:00`)."""
    return moment.astimezone(tz).replace(microsecond=0).isoformat()


def format_response_time(moment: datetime, tz: timezone) -> str:
    """The top-level `time` of a response: company-local with milliseconds."""
    local = moment.astimezone(tz)
    return local.isoformat(timespec="milliseconds")


def format_utc(moment: datetime) -> str:
    """A webhook `time`/`lastUpdated`: UTC with milliseconds and a Z."""
    return moment.astimezone(UTC_TZ).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


UTC_TZ = UTC


def parse_moment(text: str, tz: timezone) -> datetime:
    """Parse a QBO date or date-time; a bare date or naive time is taken in the company time zone."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed
