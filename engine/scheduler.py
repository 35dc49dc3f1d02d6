"""The scheduler: which periodic jobs are due (pure), and one lock-guarded loop that sends them.

Jobs: the app poll (seconds), the app probe (a cheap "anything new?" check, every second, that polls
what moved; on PostgreSQL the outbox listener hurries reads the same way), the QuickBooks CDC poll
(minutes), the ops of conflicts a reviewer just
resolved in another process (`dispatch`, seconds), a re-scan of the journal and ops (`kick`, so a lost
message costs at most one interval), token refresh (`schedule.token_refresh_minutes`), the daily
sweep, the alert check (`schedule.alerts_seconds`). Only one scheduler is active: it holds a lease
(Redis `SET NX PX`, renewed each tick); a second one waits and takes over when the first stops
renewing.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import redis

from engine.settings import Schedule

log = logging.getLogger(__name__)


#: The configuration's defaults, so the intervals have no numbers of their own to drift from them.
_DEFAULTS = Schedule()


@dataclass(frozen=True)
class Intervals:
    """How often each job is sent: as configured (`engine.jobs.intervals`), the configuration's
    defaults when built with no arguments."""

    app_poll: timedelta = timedelta(seconds=_DEFAULTS.app_poll_seconds)
    app_probe: timedelta = timedelta(seconds=_DEFAULTS.app_probe_seconds)
    quickbooks_poll: timedelta = timedelta(seconds=_DEFAULTS.quickbooks_poll_seconds)
    kick: timedelta = timedelta(seconds=_DEFAULTS.kick_seconds)
    dispatch: timedelta = timedelta(seconds=_DEFAULTS.dispatch_seconds)
    token_refresh: timedelta = timedelta(minutes=_DEFAULTS.token_refresh_minutes)
    sweep: timedelta = timedelta(hours=_DEFAULTS.sweep_hours)
    alerts: timedelta = timedelta(seconds=_DEFAULTS.alerts_seconds)

    def of(self) -> Mapping[str, timedelta]:
        return {
            "app_poll": self.app_poll,
            "app_probe": self.app_probe,
            "quickbooks_poll": self.quickbooks_poll,
            "kick": self.kick,
            "dispatch": self.dispatch,
            "token_refresh": self.token_refresh,
            "sweep": self.sweep,
            "alerts": self.alerts,
        }


def due(now: datetime, last: Mapping[str, datetime], intervals: Intervals) -> list[str]:
    """The jobs whose interval has passed since they last ran (never run: due at once)."""
    return [job for job, every in intervals.of().items() if job not in last or now - last[job] >= every]


class Lease(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class LocalLease:
    """Embedded mode: one process, nobody to compete with."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


class RedisLease:
    """A lease in Redis: held by whoever set the key, renewed on each acquire, gone after `ttl_ms`."""

    _RENEW = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
    )
    _RELEASE = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
    )

    def __init__(self, client: redis.Redis, key: str = "ledgersync:scheduler", ttl_ms: int = 15_000) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        client = self.client
        if client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return True
        return bool(client.eval(self._RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        self.client.eval(self._RELEASE, 1, self.key, self.token)


class Scheduler:
    """Sends due jobs through `send(job)` every `tick` seconds while it holds the lease."""

    def __init__(
        self,
        send: Callable[[str], None],
        intervals: Intervals,
        now: Callable[[], datetime],
        lease: Lease | None = None,
        tick: float = 1.0,
    ) -> None:
        self.send = send
        self.intervals = intervals
        self.now = now
        self.lease = lease or LocalLease()
        self.tick = tick
        self.last: dict[str, datetime] = {}
        #: Whether this scheduler held the lease at its last tick (a standby sends nothing).
        self.active = False
        self._stop = threading.Event()

    def tick_once(self) -> list[str]:
        """One tick: if this scheduler is the active one, send what is due. Returns what was sent."""
        self.active = self.lease.acquire()
        if not self.active:
            return []
        now = self.now()
        jobs = due(now, self.last, self.intervals)
        for job in jobs:
            self.send(job)
            self.last[job] = now
        return jobs

    def run(self) -> None:
        log.info("scheduler running (tick %.1fs)", self.tick)
        try:
            while not self._stop.is_set():
                try:
                    self.tick_once()
                except Exception:
                    log.exception("scheduler tick failed; trying again next tick")
                self._stop.wait(self.tick)
        finally:
            self.lease.release()

    def stop(self) -> None:
        self._stop.set()
