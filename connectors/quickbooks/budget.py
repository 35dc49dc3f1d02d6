"""The per-realm rate budget every worker shares: requests and batches per minute, requests per second,
calls in flight, the wait after a 429, and the month's metered (CorePlus) reads.

A *spare* call (a single write sent to fill the minute once its batches are spent) starts only while
the minute's other requests stay under R - B (460 of 500): the room left is the batches', so single
writes never take the requests the next batches need. `room` says, without taking anything, how many
batches and spare calls could start now, so a pipeline can choose what to send.

Two implementations of one Protocol: `MemoryRateBudget` for the embedded single-process mode (threads)
and `RedisRateBudget` for many workers. Both take a clock and a sleep, so tests need not wait.

With `patience` (the workers' setting), a call that would wait longer than that for its company's
budget (a 429's penalty, a spent minute) raises RateLimitedError with the wait instead of sleeping:
the actor hands its message back, delayed, and its thread serves other companies' messages meanwhile.
So a company in a 429 storm or a long backfill holds no worker thread the others need.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

import redis
from pydantic import SecretStr

from connectors.quickbooks.settings import QboSettings
from engine.errors import RateLimitedError, UpstreamUnavailableError

#: How long to wait before looking again when only the in-flight limit is full.
IN_FLIGHT_POLL_SECONDS = 0.02
#: A crashed worker's in-flight slot frees itself after this long (Redis only).
IN_FLIGHT_LEASE_SECONDS = 180.0
#: A request counts in the per-minute windows from when it starts until a minute after its answer came
#: back. QuickBooks counts it from when it arrives, which is between the two; a window that counted it
#: from its start let a request through while QuickBooks still counted the one it replaced, when that
#: one had been slower on its way (a 429 at 10,000 records on a busy machine, a whole minute's hold).
#: Counting from the answer costs each request its latency in the window, nothing more.


def window_seconds(settings: QboSettings) -> float:
    """How long a request counts in the per-minute windows after its answer."""
    return settings.minute_seconds


class MeteredRead(StrEnum):
    """The CorePlus (metered) call kinds; single writes are Core and free."""

    READ = "read"
    QUERY = "query"
    CDC = "cdc"
    BATCH = "batch"


class Room(NamedTuple):
    """What could start now by the per-minute windows (in-flight and per-second limits aside)."""

    #: Batch requests.
    batches: int
    #: Spare calls: single writes that leave the minute's remaining batches their requests.
    spares: int
    #: When both are 0: seconds until one of them may start (else 0).
    wait: float


class RateBudget(Protocol):
    def acquire(
        self, realm_id: str, *, batch: bool = False, spare: bool = False
    ) -> AbstractContextManager[None]:
        """Block until a call may start (per-minute, batch and in-flight limits, 429 penalty; a
        `spare` call also waits while the minute's non-batch requests would eat the batches' room);
        the call stays in flight until the block exits."""
        ...

    def room(self, realm_id: str) -> Room:
        """How many batches and spare calls could start now; takes nothing."""
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


def spare_cap(settings: QboSettings) -> int | None:
    """The most non-batch requests a minute may hold for a spare call to start (R - B); None when
    batches have no limit of their own below the requests' (nothing to leave room for)."""
    cap = settings.requests_per_minute - settings.batch_requests_per_minute
    return cap if cap > 0 else None


def wait_or_hand_back(
    realm_id: str, wait: float, waited: float, patience: float | None, sleep: Callable[[float], None]
) -> float:
    """Sleep `wait` (returning the total waited), unless that would pass `patience`: then raise
    RateLimitedError saying how long the company's budget is spent, for the caller to come back."""
    if patience is not None and waited + wait > patience:
        raise RateLimitedError(
            f"QuickBooks company {realm_id} has no rate budget for {wait:.1f} s; handed back",
            retry_after=wait,
        )
    sleep(wait)
    return waited + wait


def room_of(
    settings: QboSettings,
    requests: int,
    batches: int,
    oldest: float | None,
    oldest_batch: float | None,
    now: float,
) -> Room:
    """`Room` from a realm's windows: `requests` (batches included) and `batches` in the last minute,
    the start times of the oldest of each (None when empty)."""
    s = settings
    free = s.requests_per_minute - requests
    batch_room = max(0, min(s.batch_requests_per_minute - batches, free))
    cap = spare_cap(s)
    spare_room = max(0, free if cap is None else min(free, cap - (requests - batches)))
    if batch_room or spare_room:
        return Room(batch_room, spare_room, 0.0)
    span = window_seconds(s)
    frees = [t + span - now for t in (oldest, oldest_batch) if t is not None]
    return Room(0, 0, max(min(frees, default=span), 0.001))


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
        patience: float | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self.patience = patience
        self._lock = threading.Lock()
        self._realms: dict[str, _RealmState] = {}
        self._metered: dict[tuple[str, str], dict[str, int]] = {}

    @contextmanager
    def _slot(self, realm_id: str, batch: bool, spare: bool) -> Iterator[None]:
        waited = 0.0
        while (taken := self._try_take(realm_id, batch, spare))[0] > 0:
            waited = wait_or_hand_back(realm_id, taken[0], waited, self.patience, self._sleep)
        try:
            yield
        finally:
            answered = self._clock()
            with self._lock:
                state = self._realms[realm_id]
                state.in_flight -= 1
                # Counted from the answer on: every stamp in the windows is older, so they stay sorted.
                for window, counted in ((state.requests, True), (state.batches, batch)):
                    if counted:
                        with contextlib.suppress(ValueError):  # left the window already (a slow call)
                            window.remove(taken[1])
                        window.append(answered)

    def acquire(
        self, realm_id: str, *, batch: bool = False, spare: bool = False
    ) -> AbstractContextManager[None]:
        return self._slot(realm_id, batch, spare and not batch)

    def room(self, realm_id: str) -> Room:
        now = self._clock()
        with self._lock:
            state = self._pruned(realm_id, now)
            if state.penalty_until > now:
                return Room(0, 0, state.penalty_until - now)
            return room_of(
                self.settings,
                len(state.requests),
                len(state.batches),
                state.requests[0] if state.requests else None,
                state.batches[0] if state.batches else None,
                now,
            )

    def _pruned(self, realm_id: str, now: float) -> _RealmState:
        """The realm's state with what left its windows dropped (the lock held)."""
        s = self.settings
        state = self._realms.setdefault(realm_id, _RealmState())
        for window, span in (
            (state.requests, window_seconds(s)),
            (state.batches, window_seconds(s)),
            (state.recent, s.minute_seconds / 60.0),
        ):
            while window and window[0] <= now - span:
                window.popleft()
        return state

    def _try_take(self, realm_id: str, batch: bool, spare: bool) -> tuple[float, float]:
        """(0, its start) when a slot was taken, else (the seconds to wait before trying again, 0)."""
        s = self.settings
        now = self._clock()
        with self._lock:
            state = self._pruned(realm_id, now)
            second = s.minute_seconds / 60.0
            span = window_seconds(s)
            if state.penalty_until > now:
                return state.penalty_until - now, 0.0
            if len(state.requests) >= s.requests_per_minute:
                return state.requests[0] + span - now, 0.0
            if batch and len(state.batches) >= s.batch_requests_per_minute:
                return state.batches[0] + span - now, 0.0
            cap = spare_cap(s)
            if spare and cap is not None and len(state.requests) - len(state.batches) >= cap:
                return state.requests[0] + span - now, 0.0
            if s.requests_per_second is not None and len(state.recent) >= s.requests_per_second:
                return state.recent[0] + second - now, 0.0
            if state.in_flight >= s.max_in_flight:
                return IN_FLIGHT_POLL_SECONDS, 0.0
            state.requests.append(now)
            state.recent.append(now)
            if batch:
                state.batches.append(now)
            state.in_flight += 1
            return 0.0, now

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
# per-second limit (0: none), second, spare cap (0: not a spare call).
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
local cap = tonumber(ARGV[12])
if cap > 0 and redis.call('ZCARD', KEYS[1]) - redis.call('ZCARD', KEYS[2]) >= cap then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
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

# KEYS: requests zset, batches zset, penalty key. ARGV: now, minute.
# Returns {requests, batches, oldest request, oldest batch, penalty}, times as strings ('' when none).
_ROOM = """
local now = tonumber(ARGV[1])
local since = '(' .. tostring(now - tonumber(ARGV[2]))
local requests = redis.call('ZCOUNT', KEYS[1], since, '+inf')
local batches = redis.call('ZCOUNT', KEYS[2], since, '+inf')
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local oldest_batch = redis.call('ZRANGEBYSCORE', KEYS[2], since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return {requests, batches, oldest[2] or '', oldest_batch[2] or '', redis.call('GET', KEYS[3]) or ''}
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
        patience: float | None = None,
    ) -> None:
        self.settings = settings
        self.patience = patience
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._sleep = sleep
        self._take = client.register_script(_TAKE)
        self._room = client.register_script(_ROOM)
        self._penalize = client.register_script(_PENALIZE)

    def _key(self, realm_id: str, name: str) -> str:
        return f"{self._prefix}:{realm_id}:{name}"

    @contextmanager
    def _slot(self, realm_id: str, batch: bool, spare: bool) -> Iterator[None]:
        member = uuid.uuid4().hex
        waited = 0.0
        while (wait := self._try_take(realm_id, batch, spare, member)) > 0:
            waited = wait_or_hand_back(realm_id, wait, waited, self.patience, self._sleep)
        try:
            yield
        finally:
            answered = repr(self._clock())
            expire = math.ceil(window_seconds(self.settings) * 1000) + 1000
            with self._redis.pipeline() as pipe:
                pipe.zrem(self._key(realm_id, "inflight"), member)
                # Counted from the answer on (see window_seconds).
                for name in ("requests", "batches") if batch else ("requests",):
                    pipe.zadd(self._key(realm_id, name), {member: answered})
                    pipe.pexpire(self._key(realm_id, name), expire)
                pipe.execute()

    def acquire(
        self, realm_id: str, *, batch: bool = False, spare: bool = False
    ) -> AbstractContextManager[None]:
        return self._slot(realm_id, batch, spare and not batch)

    def room(self, realm_id: str) -> Room:
        now = self._clock()
        keys = [self._key(realm_id, n) for n in ("requests", "batches", "penalty")]
        requests, batches, oldest, oldest_batch, penalty = self._room(
            keys=keys, args=[repr(now), repr(window_seconds(self.settings))]
        )

        def stamp(value: bytes | str) -> float | None:
            text = value.decode() if isinstance(value, bytes) else value
            return float(text) if text else None

        held = stamp(penalty)
        if held is not None and held > now:
            return Room(0, 0, held - now)
        return room_of(self.settings, int(requests), int(batches), stamp(oldest), stamp(oldest_batch), now)

    def _try_take(self, realm_id: str, batch: bool, spare: bool, member: str) -> float:
        s = self.settings
        keys = [self._key(realm_id, n) for n in ("requests", "batches", "inflight", "penalty", "second")]
        args: list[str | int | float] = [
            repr(self._clock()),
            repr(window_seconds(s)),
            s.requests_per_minute,
            s.batch_requests_per_minute,
            s.max_in_flight,
            "1" if batch else "0",
            member,
            repr(IN_FLIGHT_LEASE_SECONDS),
            repr(IN_FLIGHT_POLL_SECONDS),
            s.requests_per_second or 0,
            repr(s.minute_seconds / 60.0),
            (spare_cap(s) or 0) if spare else 0,
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
