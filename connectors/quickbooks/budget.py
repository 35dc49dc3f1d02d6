"""The per-realm rate budget every worker shares: requests and batches per minute, requests per second,
calls in flight, the wait after a 429, and the month's metered (CorePlus) reads.

Two implementations of one Protocol: `MemoryRateBudget` for the embedded single-process mode (threads)
and `RedisRateBudget` for many workers. Both take a clock and a sleep, so tests need not wait.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import redis
from pydantic import SecretStr

from connectors.quickbooks.settings import QboSettings
from engine.errors import UpstreamUnavailableError

#: How long to wait before looking again when only the in-flight limit is full.
IN_FLIGHT_POLL_SECONDS = 0.02
#: A crashed worker's in-flight slot frees itself after this long (Redis only).
IN_FLIGHT_LEASE_SECONDS = 180.0


class MeteredRead(StrEnum):
    """The CorePlus (metered) call kinds; single writes are Core and free."""

    READ = "read"
    QUERY = "query"
    CDC = "cdc"
    BATCH = "batch"


class RateBudget(Protocol):
    def acquire(self, realm_id: str, *, batch: bool = False) -> AbstractContextManager[None]:
        """Block until a call may start (per-minute, batch and in-flight limits, 429 penalty);
        the call stays in flight until the block exits."""
        ...

    def penalize(self, realm_id: str, seconds: float) -> None:
        """QuickBooks throttled the realm: hold every worker's calls to it for `seconds`."""
        ...

    def record_metered(self, realm_id: str, kind: MeteredRead) -> None:
        """Count one successful metered read in the current month."""
        ...

    def metered_reads(self, realm_id: str, month: str | None = None) -> dict[str, int]:
        """This month's (or `month`, "YYYY-MM") metered reads per kind, plus "total"."""
        ...


def month_of(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m")


def _with_total(counts: dict[str, int]) -> dict[str, int]:
    full = {kind.value: counts.get(kind.value, 0) for kind in MeteredRead}
    full["total"] = sum(full.values())
    return full


class _RealmState:
    def __init__(self) -> None:
        self.requests: deque[float] = deque()
        self.batches: deque[float] = deque()
        #: Starts within the last second (a sixtieth of the minute).
        self.recent: deque[float] = deque()
        self.in_flight = 0
        self.penalty_until = 0.0


class MemoryRateBudget:
    """The budget of one process, shared by its threads."""

    def __init__(
        self,
        settings: QboSettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._realms: dict[str, _RealmState] = {}
        self._metered: dict[tuple[str, str], dict[str, int]] = {}

    @contextmanager
    def _slot(self, realm_id: str, batch: bool) -> Iterator[None]:
        while (wait := self._try_take(realm_id, batch)) > 0:
            self._sleep(wait)
        try:
            yield
        finally:
            with self._lock:
                self._realms[realm_id].in_flight -= 1

    def acquire(self, realm_id: str, *, batch: bool = False) -> AbstractContextManager[None]:
        return self._slot(realm_id, batch)

    def _try_take(self, realm_id: str, batch: bool) -> float:
        """0 when a slot was taken, else the seconds to wait before trying again."""
        s = self.settings
        now = self._clock()
        with self._lock:
            state = self._realms.setdefault(realm_id, _RealmState())
            second = s.minute_seconds / 60.0
            for window, span in (
                (state.requests, s.minute_seconds),
                (state.batches, s.minute_seconds),
                (state.recent, second),
            ):
                while window and window[0] <= now - span:
                    window.popleft()
            if state.penalty_until > now:
                return state.penalty_until - now
            if len(state.requests) >= s.requests_per_minute:
                return state.requests[0] + s.minute_seconds - now
            if batch and len(state.batches) >= s.batch_requests_per_minute:
                return state.batches[0] + s.minute_seconds - now
            if s.requests_per_second is not None and len(state.recent) >= s.requests_per_second:
                return state.recent[0] + second - now
            if state.in_flight >= s.max_in_flight:
                return IN_FLIGHT_POLL_SECONDS
            state.requests.append(now)
            state.recent.append(now)
            if batch:
                state.batches.append(now)
            state.in_flight += 1
            return 0.0

    def penalize(self, realm_id: str, seconds: float) -> None:
        with self._lock:
            state = self._realms.setdefault(realm_id, _RealmState())
            state.penalty_until = max(state.penalty_until, self._clock() + seconds)

    def record_metered(self, realm_id: str, kind: MeteredRead) -> None:
        with self._lock:
            counts = self._metered.setdefault((realm_id, month_of(self._clock())), {})
            counts[kind.value] = counts.get(kind.value, 0) + 1

    def metered_reads(self, realm_id: str, month: str | None = None) -> dict[str, int]:
        with self._lock:
            return _with_total(dict(self._metered.get((realm_id, month or month_of(self._clock())), {})))


# KEYS: requests zset, batches zset, in-flight zset, penalty key, last-second zset.
# ARGV: now, minute, per-minute limit, batch limit, in-flight limit, is batch, member, lease, poll,
# per-second limit (0: none), second.
# Returns "0" when the slot was taken, else the seconds to wait (a string: Lua numbers become integers).
_TAKE = """
local now = tonumber(ARGV[1])
local minute = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - minute)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - minute)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local second = tonumber(ARGV[11])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - second)
local penalty = tonumber(redis.call('GET', KEYS[4]) or '0')
if penalty > now then return tostring(penalty - now) end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + minute - now)
end
if ARGV[6] == '1' and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + minute - now)
end
local per_second = tonumber(ARGV[10])
if per_second > 0 and redis.call('ZCARD', KEYS[5]) >= per_second then
  local oldest = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + second - now)
end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return ARGV[9] end
redis.call('ZADD', KEYS[5], now, ARGV[7])
redis.call('PEXPIRE', KEYS[5], math.ceil(second * 1000) + 1000)
redis.call('ZADD', KEYS[1], now, ARGV[7])
redis.call('PEXPIRE', KEYS[1], math.ceil(minute * 1000) + 1000)
if ARGV[6] == '1' then
  redis.call('ZADD', KEYS[2], now, ARGV[7])
  redis.call('PEXPIRE', KEYS[2], math.ceil(minute * 1000) + 1000)
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[8]), ARGV[7])
redis.call('PEXPIRE', KEYS[3], math.ceil(tonumber(ARGV[8]) * 1000))
return '0'
"""

_PENALIZE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ = tonumber(ARGV[1])
if until_ > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
end
return 1
"""

#: Monthly counters outlive their month long enough for `ledgersync status` to compare.
METERED_TTL_SECONDS = 400 * 24 * 3600


class RedisRateBudget:
    """The budget shared by every worker through Redis: sliding windows in sorted sets, changed
    atomically by a Lua script; in-flight slots are leases, so a crashed worker cannot leak one."""

    def __init__(
        self,
        client: redis.Redis,
        settings: QboSettings,
        *,
        prefix: str = "ledgersync:budget",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._sleep = sleep
        self._take = client.register_script(_TAKE)
        self._penalize = client.register_script(_PENALIZE)

    def _key(self, realm_id: str, name: str) -> str:
        return f"{self._prefix}:{realm_id}:{name}"

    @contextmanager
    def _slot(self, realm_id: str, batch: bool) -> Iterator[None]:
        member = uuid.uuid4().hex
        while (wait := self._try_take(realm_id, batch, member)) > 0:
            self._sleep(wait)
        try:
            yield
        finally:
            self._redis.zrem(self._key(realm_id, "inflight"), member)

    def acquire(self, realm_id: str, *, batch: bool = False) -> AbstractContextManager[None]:
        return self._slot(realm_id, batch)

    def _try_take(self, realm_id: str, batch: bool, member: str) -> float:
        s = self.settings
        keys = [self._key(realm_id, n) for n in ("requests", "batches", "inflight", "penalty", "second")]
        args: list[str | int | float] = [
            repr(self._clock()),
            repr(s.minute_seconds),
            s.requests_per_minute,
            s.batch_requests_per_minute,
            s.max_in_flight,
            "1" if batch else "0",
            member,
            repr(IN_FLIGHT_LEASE_SECONDS),
            repr(IN_FLIGHT_POLL_SECONDS),
            s.requests_per_second or 0,
            repr(s.minute_seconds / 60.0),
        ]
        answer = self._take(keys=keys, args=args)
        return float(answer.decode() if isinstance(answer, bytes) else answer)

    def penalize(self, realm_id: str, seconds: float) -> None:
        until = self._clock() + seconds
        self._penalize(keys=[self._key(realm_id, "penalty")], args=[repr(until), repr(seconds)])

    def record_metered(self, realm_id: str, kind: MeteredRead) -> None:
        key = self._key(realm_id, f"metered:{month_of(self._clock())}")
        with self._redis.pipeline() as pipe:
            pipe.hincrby(key, kind.value, 1)
            pipe.expire(key, METERED_TTL_SECONDS)
            pipe.execute()

    def metered_reads(self, realm_id: str, month: str | None = None) -> dict[str, int]:
        key = self._key(realm_id, f"metered:{month or month_of(self._clock())}")
        raw: dict[bytes | str, bytes | str] = self._redis.hgetall(key)
        counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        return _with_total(counts)


def metered_reads_from_redis(
    url: str, realms: list[str], prefix: str = "ledgersync:budget"
) -> dict[str, dict[str, int]]:
    """This month's metered reads per realm, as the shared Redis budget counted them (for status)."""
    client = redis.Redis.from_url(url)
    try:
        settings = QboSettings(client_id="-", client_secret=SecretStr("-"))
        budget = RedisRateBudget(client, settings, prefix=prefix)
        return {realm: budget.metered_reads(realm) for realm in realms}
    except redis.RedisError as error:
        raise UpstreamUnavailableError("the rate budget's Redis is unavailable", detail=str(error)) from error
    finally:
        client.close()
